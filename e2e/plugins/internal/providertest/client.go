// Package providertest drives a provider through its gRPC interface, as the engine does, on a
// loopback port: tests see exactly what the engine would receive.
package providertest

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"apiplatform.local/e2e/plugins/internal/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Client is a provider client for one resource type (or function).
type Client struct {
	pulumirpc.ResourceProviderClient
	t     *testing.T
	Token string
}

// Start serves the provider on loopback for the test's duration.
func Start(t *testing.T, p *provider.Provider, token string) *Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pulumirpc.RegisterResourceProviderServer(srv, provider.NewServer(p))
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop() })
	return &Client{ResourceProviderClient: pulumirpc.NewResourceProviderClient(conn), t: t, Token: token}
}

var options = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

// Props marshals values the way the engine sends them.
func (c *Client) Props(m resource.PropertyMap) *structpb.Struct {
	c.t.Helper()
	s, err := plugin.MarshalProperties(m, options)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// Map unmarshals what the provider returned.
func (c *Client) Map(s *structpb.Struct) resource.PropertyMap {
	c.t.Helper()
	m, err := plugin.UnmarshalProperties(s, options)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// URN is a resource's URN in a test stack.
func (c *Client) URN(name string) string {
	return string(resource.NewURN("test", "api-platform", "", tokens.Type(c.Token), name))
}

func (c *Client) ctx() context.Context { return context.Background() }

// Check returns the checked inputs and the failures.
func (c *Client) Check(news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	c.t.Helper()
	resp, err := c.ResourceProviderClient.Check(c.ctx(), &pulumirpc.CheckRequest{Urn: c.URN("r"), News: c.Props(news)})
	if err != nil {
		c.t.Fatalf("Check: %v", err)
	}
	return c.Map(resp.GetInputs()), resp.GetFailures()
}

// MustCheck returns the checked inputs, failing the test on any failure.
func (c *Client) MustCheck(news resource.PropertyMap) resource.PropertyMap {
	c.t.Helper()
	inputs, failures := c.Check(news)
	if len(failures) > 0 {
		c.t.Fatalf("Check failures: %v", failures)
	}
	return inputs
}

// Create returns the id and the state (preview: the planned state).
func (c *Client) Create(inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap) {
	c.t.Helper()
	id, state, err := c.TryCreate(inputs, preview)
	if err != nil {
		c.t.Fatalf("Create: %v", err)
	}
	return id, state
}

// TryCreate is Create that returns the provider's error.
func (c *Client) TryCreate(inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	c.t.Helper()
	resp, err := c.ResourceProviderClient.Create(c.ctx(), &pulumirpc.CreateRequest{
		Urn: c.URN("r"), Properties: c.Props(inputs), Preview: preview,
	})
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), c.Map(resp.GetProperties()), nil
}

// Diff compares a state with new (checked) inputs.
func (c *Client) Diff(id string, state, news resource.PropertyMap) *pulumirpc.DiffResponse {
	c.t.Helper()
	resp, err := c.ResourceProviderClient.Diff(c.ctx(), &pulumirpc.DiffRequest{
		Id: id, Urn: c.URN("r"), Olds: c.Props(state), News: c.Props(news),
	})
	if err != nil {
		c.t.Fatalf("Diff: %v", err)
	}
	return resp
}

// Read refreshes a state (or imports, with an empty one).
func (c *Client) Read(id string, state, inputs resource.PropertyMap) (string, resource.PropertyMap, resource.PropertyMap, error) {
	c.t.Helper()
	resp, err := c.ResourceProviderClient.Read(c.ctx(), &pulumirpc.ReadRequest{
		Id: id, Urn: c.URN("r"), Properties: c.Props(state), Inputs: c.Props(inputs),
	})
	if err != nil {
		return "", nil, nil, err
	}
	return resp.GetId(), c.Map(resp.GetProperties()), c.Map(resp.GetInputs()), nil
}

// Update applies an in-place change.
func (c *Client) Update(id string, state, news resource.PropertyMap, preview bool) resource.PropertyMap {
	c.t.Helper()
	resp, err := c.ResourceProviderClient.Update(c.ctx(), &pulumirpc.UpdateRequest{
		Id: id, Urn: c.URN("r"), Olds: c.Props(state), News: c.Props(news), Preview: preview,
	})
	if err != nil {
		c.t.Fatalf("Update: %v", err)
	}
	return c.Map(resp.GetProperties())
}

// Delete deletes the resource.
func (c *Client) Delete(id string, state resource.PropertyMap) {
	c.t.Helper()
	if _, err := c.ResourceProviderClient.Delete(c.ctx(), &pulumirpc.DeleteRequest{
		Id: id, Urn: c.URN("r"), Properties: c.Props(state),
	}); err != nil {
		c.t.Fatalf("Delete: %v", err)
	}
}

// Invoke calls the client's function.
func (c *Client) Invoke(args resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	c.t.Helper()
	resp, err := c.ResourceProviderClient.Invoke(c.ctx(), &pulumirpc.InvokeRequest{Tok: c.Token, Args: c.Props(args)})
	if err != nil {
		c.t.Fatalf("Invoke: %v", err)
	}
	return c.Map(resp.GetReturn()), resp.GetFailures()
}

// Version is what GetPluginInfo reports.
func (c *Client) Version() string {
	c.t.Helper()
	info, err := c.GetPluginInfo(c.ctx(), &emptypb.Empty{})
	if err != nil {
		c.t.Fatal(err)
	}
	return info.GetVersion()
}

// Unknown says whether a value is not yet known (a preview).
func Unknown(v resource.PropertyValue) bool {
	return v.IsComputed() || (v.IsSecret() && v.SecretValue().Element.IsComputed())
}

// Text is a string value, secret or not ("" otherwise).
func Text(v resource.PropertyValue) string {
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

// Failed says whether a failure names the property and contains the text.
func Failed(failures []*pulumirpc.CheckFailure, property, text string) bool {
	for _, f := range failures {
		if f.GetProperty() == property && strings.Contains(f.GetReason(), text) {
			return true
		}
	}
	return false
}
