// Package langhost is the project's own Python language host for the Pulumi engine.
//
// Upstream's host lives in a Go module the module proxy does not serve, so the project writes
// its own against the engine's LanguageRuntime protocol. It runs programs and policy packs
// with `pulumi-language-python-exec` (the executor shipped in the served sdk/v3 module, copied
// beside the host by e2e/toolchain.sh) and the interpreter of the project's virtualenv, and
// reports the resource plugins the virtualenv's Pulumi packages ask for. It does not install
// dependencies: the README's set-up command does.
package langhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// userActionableExitCode is what the executor returns after it has already shown the user a
// readable error (upstream's PYTHON_PROCESS_EXITED_AFTER_SHOWING_USER_ACTIONABLE_MESSAGE_CODE):
// the engine then stops without adding a message of its own.
const userActionableExitCode = 32

// Host implements pulumirpc.LanguageRuntimeServer.
type Host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	Version string
	// Executor is the path of pulumi-language-python-exec.
	Executor string

	mu            sync.Mutex
	engineAddress string
	rootDirectory string
}

// New is a host whose executor sits beside its own executable, as upstream's does.
func New(version, engineAddress string) (*Host, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &Host{Version: version, Executor: filepath.Join(filepath.Dir(self), "pulumi-language-python-exec"),
		engineAddress: engineAddress}, nil
}

func (h *Host) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.engineAddress = req.GetEngineAddress()
	h.rootDirectory = req.GetRootDirectory()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *Host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: h.Version}, nil
}

// interpreter is the Python a program runs with: the `virtualenv` runtime option (relative to
// the project's root), then $PULUMI_PYTHON_CMD, then python3 on $PATH; and the environment
// that activates the virtualenv, if any.
func (h *Host) interpreter(info *pulumirpc.ProgramInfo) (string, []string, error) {
	if info != nil && info.GetOptions() != nil {
		if venv, ok := info.GetOptions().AsMap()["virtualenv"].(string); ok && venv != "" {
			if !filepath.IsAbs(venv) {
				venv = filepath.Join(info.GetRootDirectory(), venv)
			}
			python := filepath.Join(venv, "bin", "python")
			if _, err := os.Stat(python); err != nil {
				return "", nil, fmt.Errorf("the virtualenv %s has no bin/python: run the README's set-up command (scripts/setup)", venv)
			}
			path := filepath.Join(venv, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
			return python, []string{"VIRTUAL_ENV=" + venv, "PATH=" + path}, nil
		}
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return cmd, nil, nil
	}
	python, err := exec.LookPath("python3")
	return python, nil, err
}

// inventoryScript prints the virtualenv's distributions and the resource plugins their
// pulumi-plugin.json files name, as JSON.
const inventoryScript = `
import importlib.metadata as metadata, json
dependencies, plugins = [], []
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    dependencies.append({"name": name, "version": dist.version})
    for file in dist.files or ():
        if file.name != "pulumi-plugin.json":
            continue
        try:
            spec = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if spec.get("resource"):
            plugins.append({"name": spec.get("name") or name, "version": spec.get("version") or dist.version,
                            "server": spec.get("server") or ""})
print(json.dumps({"dependencies": dependencies, "plugins": plugins}))
`

type inventory struct {
	Dependencies []struct{ Name, Version string }         `json:"dependencies"`
	Plugins      []struct{ Name, Version, Server string } `json:"plugins"`
}

func (h *Host) inventory(ctx context.Context, info *pulumirpc.ProgramInfo) (*inventory, error) {
	python, env, err := h.interpreter(info)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, python, "-c", inventoryScript)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the Python packages with %s: %w: %s", python, err, stderr.String())
	}
	var inv inventory
	if err := json.Unmarshal(out, &inv); err != nil {
		return nil, fmt.Errorf("reading the Python package list: %w", err)
	}
	return &inv, nil
}

func semver(v string) string {
	if strings.HasPrefix(v, "v") {
		return v
	}
	return "v" + v
}

// GetRequiredPackages: one resource plugin per installed Pulumi package that declares one.
func (h *Host) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	inv, err := h.inventory(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, p := range inv.Plugins {
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Kind: "resource", Name: p.Name, Version: semver(p.Version), Server: p.Server,
		})
	}
	return resp, nil
}

// GetRequiredPlugins is the older form of GetRequiredPackages.
func (h *Host) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	packages, err := h.GetRequiredPackages(ctx, &pulumirpc.GetRequiredPackagesRequest{Info: req.GetInfo()})
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPluginsResponse{}
	for _, p := range packages.GetPackages() {
		resp.Plugins = append(resp.Plugins, &pulumirpc.PluginDependency{
			Kind: p.GetKind(), Name: p.GetName(), Version: p.GetVersion(), Server: p.GetServer(),
		})
	}
	return resp, nil
}

func (h *Host) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	inv, err := h.inventory(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, d := range inv.Dependencies {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: d.Name, Version: d.Version})
	}
	return resp, nil
}

func (h *Host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	python, env, err := h.interpreter(req.GetInfo())
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, python, "-c", "import platform; print(platform.python_version())")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("asking %s its version: %w", python, err)
	}
	return &pulumirpc.AboutResponse{Executable: python, Version: strings.TrimSpace(string(out))}, nil
}

// InstallDependencies installs nothing: scripts/setup creates the virtualenv from the pinned
// requirements.txt. It says so, once, on the engine's output.
func (h *Host) InstallDependencies(
	_ *pulumirpc.InstallDependenciesRequest, server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	return server.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("dependencies are installed by the project's set-up command (scripts/setup), not by the language host\n"),
	})
}

func (h *Host) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *Host) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func jsonOrEmpty[T any](v T, empty string) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return empty
	}
	return string(b)
}

// Run runs the program with the executor, which connects it to the engine's resource monitor.
func (h *Host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	python, env, err := h.interpreter(req.GetInfo())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	if _, err := os.Stat(h.Executor); err != nil {
		return nil, fmt.Errorf("missing executor next to the language host: %w", err)
	}
	program, root := req.GetProgram(), req.GetPwd()
	if info := req.GetInfo(); info != nil {
		if info.GetProgramDirectory() != "" {
			program = info.GetProgramDirectory()
		}
		if info.GetRootDirectory() != "" {
			root = info.GetRootDirectory()
		}
	}
	h.mu.Lock()
	engine := h.engineAddress
	h.mu.Unlock()
	args := []string{
		"-u", h.Executor,
		"--monitor", req.GetMonitorAddress(),
		"--engine", engine,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--root_directory", root,
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--organization", req.GetOrganization(),
		program,
	}
	cmd := exec.CommandContext(ctx, python, append(args, req.GetArgs()...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), env...),
		"PULUMI_CONFIG="+jsonOrEmpty(req.GetConfig(), "{}"),
		"PULUMI_CONFIG_SECRET_KEYS="+jsonOrEmpty(req.GetConfigSecretKeys(), "[]"),
	)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return &pulumirpc.RunResponse{Error: err.Error()}, nil
		}
		if exitErr.ExitCode() == userActionableExitCode {
			return &pulumirpc.RunResponse{Bail: true}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("python exited with code %d", exitErr.ExitCode())}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// RunPlugin runs a Python plugin, such as a policy pack, from its directory and streams its
// output back; the engine reads the plugin's port from the first line of its stdout.
func (h *Host) RunPlugin(
	req *pulumirpc.RunPluginRequest, server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	python, env, err := h.interpreter(req.GetInfo())
	if err != nil {
		return err
	}
	program := req.GetProgram()
	if info := req.GetInfo(); info != nil && info.GetProgramDirectory() != "" {
		program = info.GetProgramDirectory()
	}
	cmd := exec.CommandContext(server.Context(), python, append([]string{"-u", program}, req.GetArgs()...)...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(append(os.Environ(), env...), req.GetEnv()...)
	var mu sync.Mutex
	send := func(resp *pulumirpc.RunPluginResponse) error {
		mu.Lock()
		defer mu.Unlock()
		return server.Send(resp)
	}
	cmd.Stdout = writerFunc(func(p []byte) error {
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: bytes.Clone(p)}})
	})
	cmd.Stderr = writerFunc(func(p []byte) error {
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: bytes.Clone(p)}})
	})
	code := 0
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return err
		}
		code = exitErr.ExitCode()
	}
	return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(code)}})
}

type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}
