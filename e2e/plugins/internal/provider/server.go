package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"apiplatform.local/e2e/plugins/internal/serve"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Provider is a named, versioned set of resource types and functions.
type Provider struct {
	Name      string
	Version   string
	Resources []*Resource
	Functions []*Function
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	p         *Provider
	resources map[string]*Resource
	functions map[string]*Function
}

// NewServer is the provider's gRPC service.
func NewServer(p *Provider) pulumirpc.ResourceProviderServer {
	s := &server{p: p, resources: map[string]*Resource{}, functions: map[string]*Function{}}
	for _, r := range p.Resources {
		s.resources[r.Token] = r
	}
	for _, f := range p.Functions {
		s.functions[f.Token] = f
	}
	return s
}

// Serve runs the provider as the engine starts a plugin.
func Serve(p *Provider) {
	serve.Serve(func(srv *grpc.Server) { pulumirpc.RegisterResourceProviderServer(srv, NewServer(p)) })
}

var rpcOptions = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, rpcOptions)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, rpcOptions)
}

func (s *server) errorf(format string, args ...any) error {
	return fmt.Errorf("%s provider (api-platform's own, %s): %s", s.p.Name, s.p.Version, fmt.Sprintf(format, args...))
}

func (s *server) resource(urn string) (*Resource, error) {
	token := string(resource.URN(urn).Type())
	if r, ok := s.resources[token]; ok {
		return r, nil
	}
	names := make([]string, 0, len(s.resources))
	for t := range s.resources {
		names = append(names, t)
	}
	slices.Sort(names)
	return nil, s.errorf("resource type %s is not implemented (implemented: %s)", token, strings.Join(names, ", "))
}

// request resolves a request's resource type and unmarshals its property maps, in the order given.
func (s *server) request(urn string, structs ...*structpb.Struct) (*Resource, []resource.PropertyMap, error) {
	r, err := s.resource(urn)
	if err != nil {
		return nil, nil, err
	}
	maps := make([]resource.PropertyMap, len(structs))
	for i, st := range structs {
		if maps[i], err = unmarshal(st); err != nil {
			return nil, nil, err
		}
	}
	return r, maps, nil
}

// defaulted is the checked inputs with their defaults, normalized.
func defaulted(r *Resource, in resource.PropertyMap) resource.PropertyMap {
	out := withDefaults(r.Inputs, in)
	if r.Normalize != nil {
		r.Normalize(out)
	}
	return out
}

// state is what the engine stores for a resource: its defaulted inputs and computed outputs,
// sensitive ones as secrets.
func state(r *Resource, in, computed resource.PropertyMap) resource.PropertyMap {
	out := markSecrets(r.Inputs, in)
	for k, v := range markSecrets(r.Outputs, computed) {
		out[k] = v
	}
	return out
}

func rpcFailures(failures []Failure) []*pulumirpc.CheckFailure {
	out := make([]*pulumirpc.CheckFailure, len(failures))
	for i, f := range failures {
		out[i] = &pulumirpc.CheckFailure{Property: f.Property, Reason: f.Property + " " + f.Reason}
	}
	return out
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: s.p.Version}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	schema, err := packageSchema(s.p)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetSchemaResponse{Schema: schema}, nil
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

// Check validates the inputs and returns them as given, sensitive ones as secrets.
func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	r, given, err := s.request(req.GetUrn(), req.GetNews())
	if err != nil {
		return nil, err
	}
	news := given[0]
	failures := validate(r.Inputs, news, "")
	if len(failures) == 0 && r.Normalize != nil {
		failures = r.Normalize(withDefaults(r.Inputs, news))
	}
	inputs, err := marshal(markSecrets(r.Inputs, news))
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: rpcFailures(failures)}, err
}

// Diff compares the stored state with the new inputs (defaulted), property by property.
func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	r, given, err := s.request(req.GetUrn(), req.GetOlds(), req.GetNews())
	if err != nil {
		return nil, err
	}
	olds, news := given[0], given[1]
	return diff(r, olds, defaulted(r, news)), nil
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	r, given, err := s.request(req.GetUrn(), req.GetProperties())
	if err != nil {
		return nil, err
	}
	in := given[0]
	in = defaulted(r, in)
	if req.GetPreview() {
		unknown := resource.PropertyMap{}
		for _, p := range r.Outputs {
			unknown[resource.PropertyKey(p.Name)] = resource.MakeComputed(resource.NewProperty(""))
		}
		props, err := marshal(state(r, in, unknown))
		return &pulumirpc.CreateResponse{Properties: props}, err
	}
	id, computed, err := r.Create(ctx, Values(Plain(in)))
	if err != nil {
		return nil, s.errorf("creating %s: %v", req.GetUrn(), err)
	}
	props, err := marshal(state(r, in, computed))
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, err
}

// Read returns the stored state (these resources exist only in it), with the outputs that
// depend on time recomputed; with no state, it imports the resource from its id.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	r, given, err := s.request(req.GetUrn(), req.GetProperties(), req.GetInputs())
	if err != nil {
		return nil, err
	}
	current, inputs := given[0], given[1]
	id := req.GetId()
	if len(current) == 0 {
		if r.Import == nil {
			return nil, s.errorf("%s cannot be imported (as upstream: the resource exists only in the state)", r.Token)
		}
		var imported resource.PropertyMap
		if id, imported, err = r.Import(id); err != nil {
			return nil, s.errorf("importing %s: %v", r.Token, err)
		}
		in := only(r.Inputs, imported)
		current, inputs = state(r, in, only(r.Outputs, imported)), markSecrets(r.Inputs, in)
	}
	current = refreshed(r, current)
	if len(inputs) == 0 {
		inputs = markSecrets(r.Inputs, only(r.Inputs, current))
	}
	props, err := marshal(current)
	if err != nil {
		return nil, err
	}
	ins, err := marshal(inputs)
	return &pulumirpc.ReadResponse{Id: id, Properties: props, Inputs: ins}, err
}

func refreshed(r *Resource, current resource.PropertyMap) resource.PropertyMap {
	if r.Refresh == nil {
		return current
	}
	out := current.Copy()
	for k, v := range markSecrets(r.Outputs, r.Refresh(Values(Plain(current)))) {
		out[k] = v
	}
	return out
}

// Update stores the new inputs beside the computed outputs (only in-place inputs changed).
func (s *server) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	r, given, err := s.request(req.GetUrn(), req.GetOlds(), req.GetNews())
	if err != nil {
		return nil, err
	}
	olds, news := given[0], given[1]
	props, err := marshal(refreshed(r, state(r, defaulted(r, news), only(r.Outputs, olds))))
	return &pulumirpc.UpdateResponse{Properties: props}, err
}

func (s *server) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (s *server) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	f, ok := s.functions[req.GetTok()]
	if !ok {
		return nil, s.errorf("function %s is not implemented", req.GetTok())
	}
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	failures := validate(f.Inputs, args, "")
	args = withDefaults(f.Inputs, args)
	if len(failures) == 0 && f.Normalize != nil {
		failures = f.Normalize(args)
	}
	if len(failures) > 0 {
		return &pulumirpc.InvokeResponse{Failures: rpcFailures(failures)}, nil
	}
	result, err := f.Call(Values(Plain(args)))
	if err != nil {
		return nil, s.errorf("%s: %v", f.Token, err)
	}
	ret, err := marshal(markSecrets(f.Outputs, result))
	return &pulumirpc.InvokeResponse{Return: ret}, err
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
