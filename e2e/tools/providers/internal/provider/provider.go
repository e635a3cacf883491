// Package provider is a small, generic Pulumi resource-provider server.
//
// The reachable Go module proxy serves neither pulumi-random's nor pulumi-tls's provider
// module, so the end-to-end test builds these stand-ins instead. They implement the exact
// resource types and property names of the published Python SDKs for the resources this
// project uses; every input forces a replacement, as it does upstream for these resources.
package provider

import (
	"context"
	"fmt"
	"os"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Resource computes the outputs of one resource type from its inputs.
type Resource interface {
	// Create returns the outputs to store beside the inputs. It is called only for real
	// operations, never during preview.
	Create(inputs resource.PropertyMap) (resource.PropertyMap, error)
	// Computed names the output properties that are unknown until Create runs.
	Computed() []string
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	name      string
	version   string
	resources map[string]Resource
}

var marshal = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

func (s *server) resourceFor(urn string) (Resource, error) {
	token := string(resource.URN(urn).Type())
	r, ok := s.resources[token]
	if !ok {
		return nil, fmt.Errorf("%s provider: unsupported resource type %q", s.name, token)
	}
	return r, nil
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: s.version}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{
		Schema: fmt.Sprintf(`{"name":%q,"version":%q}`, s.name, s.version),
	}, nil
}

func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if _, err := s.resourceFor(req.GetUrn()); err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// Diff replaces the resource when any input differs from the stored one.
func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	r, err := s.resourceFor(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, err := plugin.UnmarshalProperties(req.GetOlds(), marshal)
	if err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), marshal)
	if err != nil {
		return nil, err
	}
	computed := map[string]bool{}
	for _, k := range r.Computed() {
		computed[k] = true
	}
	keys := map[string]bool{}
	for k := range olds {
		if !computed[string(k)] {
			keys[string(k)] = true
		}
	}
	for k := range news {
		keys[string(k)] = true
	}
	var replaces []string
	for k := range keys {
		key := resource.PropertyKey(k)
		if !olds[key].DeepEquals(news[key]) {
			replaces = append(replaces, k)
		}
	}
	sort.Strings(replaces)
	if len(replaces) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{
		Changes: pulumirpc.DiffResponse_DIFF_SOME, Replaces: replaces, Diffs: replaces,
	}, nil
}

func (s *server) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	r, err := s.resourceFor(req.GetUrn())
	if err != nil {
		return nil, err
	}
	inputs, err := plugin.UnmarshalProperties(req.GetProperties(), marshal)
	if err != nil {
		return nil, err
	}
	outputs := inputs.Copy()
	if req.GetPreview() {
		for _, k := range r.Computed() {
			outputs[resource.PropertyKey(k)] = resource.MakeComputed(resource.NewStringProperty(""))
		}
		props, err := plugin.MarshalProperties(outputs, marshal)
		return &pulumirpc.CreateResponse{Properties: props}, err
	}
	computed, err := r.Create(unwrapSecrets(inputs))
	if err != nil {
		return nil, err
	}
	for k, v := range computed {
		outputs[k] = v
	}
	props, err := plugin.MarshalProperties(outputs, marshal)
	if err != nil {
		return nil, err
	}
	id, err := resource.NewUniqueHex("", 16, 0)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Read returns the stored state: these resources exist only in Pulumi's state.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (s *server) Update(context.Context, *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return nil, fmt.Errorf("%s provider: every input change replaces the resource", s.name)
}

func (s *server) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Serve runs the provider's gRPC server and prints its port for the engine.
func Serve(name, version string, resources map[string]Resource) {
	s := &server{name: name, version: version, resources: resources}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(srv, s)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fatal: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "fatal: %v\n", err)
		os.Exit(1)
	}
}

// Bool reads a boolean input, falling back to def when it is absent.
func Bool(inputs resource.PropertyMap, key string, def bool) bool {
	if v, ok := inputs[resource.PropertyKey(key)]; ok && v.IsBool() {
		return v.BoolValue()
	}
	return def
}

// Int reads a numeric input, falling back to def when it is absent.
func Int(inputs resource.PropertyMap, key string, def int) int {
	if v, ok := inputs[resource.PropertyKey(key)]; ok && v.IsNumber() {
		return int(v.NumberValue())
	}
	return def
}

// String reads a string input, falling back to def when it is absent.
func String(inputs resource.PropertyMap, key string, def string) string {
	if v, ok := inputs[resource.PropertyKey(key)]; ok && v.IsString() {
		return v.StringValue()
	}
	return def
}

// unwrapSecrets returns the inputs with every secret replaced by its value, for computing
// outputs; the stored inputs keep their secret markers.
func unwrapSecrets(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[k] = unwrapValue(v)
	}
	return out
}

func unwrapValue(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return unwrapValue(v.SecretValue().Element)
	case v.IsObject():
		return resource.NewObjectProperty(unwrapSecrets(v.ObjectValue()))
	case v.IsArray():
		items := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, item := range v.ArrayValue() {
			items[i] = unwrapValue(item)
		}
		return resource.NewArrayProperty(items)
	default:
		return v
	}
}
