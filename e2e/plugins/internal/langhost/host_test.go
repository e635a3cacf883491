package langhost

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// project is a project directory with a virtualenv (.venv) holding fake distributions: two
// Pulumi resource packages, a Pulumi package that is not a resource plugin, and another.
func project(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	venv := filepath.Join(root, ".venv")
	if out, err := exec.Command("python3", "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv: %v %s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
	if len(matches) != 1 {
		t.Fatalf("no site-packages in %s", venv)
	}
	site := matches[0]
	dist := func(name, version, pkg, plugin string) {
		info := filepath.Join(site, pkg+"-"+version+".dist-info")
		must(t, os.MkdirAll(info, 0o755))
		must(t, os.WriteFile(filepath.Join(info, "METADATA"),
			[]byte("Metadata-Version: 2.1\nName: "+name+"\nVersion: "+version+"\n"), 0o644))
		record := pkg + "/__init__.py,,\n"
		must(t, os.MkdirAll(filepath.Join(site, pkg), 0o755))
		must(t, os.WriteFile(filepath.Join(site, pkg, "__init__.py"), nil, 0o644))
		if plugin != "" {
			must(t, os.WriteFile(filepath.Join(site, pkg, "pulumi-plugin.json"), []byte(plugin), 0o644))
			record += pkg + "/pulumi-plugin.json,,\n"
		}
		must(t, os.WriteFile(filepath.Join(info, "RECORD"), []byte(record), 0o644))
	}
	dist("pulumi_random", "4.21.4", "pulumi_random", `{"resource": true, "name": "random", "version": "4.21.4"}`)
	dist("pulumi-tls", "5.6.2", "pulumi_tls", `{"resource": true, "name": "tls", "version": "5.6.2", "server": "https://example.invalid"}`)
	dist("pulumi_policy", "1.21.0", "pulumi_policy", `{"resource": false, "name": "policy"}`)
	dist("pyyaml", "6.0.3", "yaml", "")
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// info is a program in root whose runtime options name the virtualenv, as Pulumi.yaml does.
func info(t *testing.T, root string, virtualenv ...string) *pulumirpc.ProgramInfo {
	venv := ".venv"
	if len(virtualenv) > 0 {
		venv = virtualenv[0]
	}
	options, err := structpb.NewStruct(map[string]any{"virtualenv": venv, "toolchain": "pip"})
	must(t, err)
	return &pulumirpc.ProgramInfo{RootDirectory: root, ProgramDirectory: root, EntryPoint: ".", Options: options}
}

// serve runs the host on loopback, as the engine talks to it.
func serve(t *testing.T, h *Host) pulumirpc.LanguageRuntimeClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := grpc.NewServer()
	pulumirpc.RegisterLanguageRuntimeServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	t.Cleanup(func() { _ = conn.Close(); srv.Stop() })
	return pulumirpc.NewLanguageRuntimeClient(conn)
}

func TestRequiredPackagesAreTheVirtualenvsResourcePlugins(t *testing.T) {
	root := project(t)
	c := serve(t, &Host{Version: "3.252.0"})
	resp, err := c.GetRequiredPackages(context.Background(), &pulumirpc.GetRequiredPackagesRequest{Info: info(t, root)})
	must(t, err)
	var got []string
	for _, p := range resp.GetPackages() {
		got = append(got, p.GetKind()+" "+p.GetName()+" "+p.GetVersion()+" "+p.GetServer())
	}
	slices.Sort(got)
	want := []string{"resource random v4.21.4 ", "resource tls v5.6.2 https://example.invalid"}
	if !slices.Equal(got, want) {
		t.Fatalf("packages %q, want %q", got, want)
	}
	plugins, err := c.GetRequiredPlugins(context.Background(), &pulumirpc.GetRequiredPluginsRequest{Info: info(t, root)})
	if err != nil || len(plugins.GetPlugins()) != 2 {
		t.Fatalf("plugins: %v %v", plugins, err)
	}
	deps, err := c.GetProgramDependencies(context.Background(), &pulumirpc.GetProgramDependenciesRequest{Info: info(t, root)})
	must(t, err)
	var names []string
	for _, d := range deps.GetDependencies() {
		names = append(names, d.GetName()+"=="+d.GetVersion())
	}
	for _, want := range []string{"pulumi_random==4.21.4", "pyyaml==6.0.3", "pulumi_policy==1.21.0"} {
		if !slices.Contains(names, want) {
			t.Errorf("dependencies %v lack %s", names, want)
		}
	}
}

func TestAMissingVirtualenvSaysWhatToRun(t *testing.T) {
	c := serve(t, &Host{Version: "3.252.0"})
	_, err := c.GetRequiredPackages(context.Background(), &pulumirpc.GetRequiredPackagesRequest{Info: info(t, t.TempDir())})
	if err == nil || !strings.Contains(err.Error(), "run the README's set-up command") {
		t.Fatalf("%v", err)
	}
}

// fakeExecutor records how it was started and exits with $FAKE_EXIT.
const fakeExecutor = `
import json, os, sys
with open(os.environ["FAKE_RECORD"], "w") as f:
    json.dump({"argv": sys.argv[1:], "config": json.loads(os.environ["PULUMI_CONFIG"]),
               "secrets": json.loads(os.environ["PULUMI_CONFIG_SECRET_KEYS"]),
               "venv": os.environ.get("VIRTUAL_ENV"), "python": sys.executable}, f)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
`

func TestRunStartsTheExecutorWithTheEnginesSettings(t *testing.T) {
	root := project(t)
	executor := filepath.Join(t.TempDir(), "pulumi-language-python-exec")
	must(t, os.WriteFile(executor, []byte(fakeExecutor), 0o644))
	record := filepath.Join(t.TempDir(), "record.json")
	t.Setenv("FAKE_RECORD", record)
	c := serve(t, &Host{Version: "3.252.0", Executor: executor})
	_, err := c.Handshake(context.Background(), &pulumirpc.LanguageHandshakeRequest{EngineAddress: "127.0.0.1:4242"})
	must(t, err)
	req := &pulumirpc.RunRequest{
		Project: "api-platform", Stack: "dev", Pwd: root, MonitorAddress: "127.0.0.1:4343", DryRun: true, Parallel: 8,
		Organization: "organization", Info: info(t, root),
		Config:           map[string]string{"api-platform:platform": `{"environment":"dev"}`, "api-platform:s": "x"},
		ConfigSecretKeys: []string{"api-platform:s"},
	}
	for code, want := range map[string]*pulumirpc.RunResponse{
		"0":  {},
		"32": {Bail: true}, // the program already showed a readable error
		"3":  {Error: "python exited with code 3"},
	} {
		t.Setenv("FAKE_EXIT", code)
		resp, err := c.Run(context.Background(), req)
		must(t, err)
		if resp.GetBail() != want.GetBail() || resp.GetError() != want.GetError() {
			t.Errorf("exit %s: %v, want %v", code, resp, want)
		}
	}
	var seen struct {
		Argv         []string
		Config       map[string]string
		Secrets      []string
		Venv, Python string
	}
	raw, err := os.ReadFile(record)
	must(t, err)
	must(t, json.Unmarshal(raw, &seen))
	args := strings.Join(seen.Argv, " ")
	for _, want := range []string{"--monitor 127.0.0.1:4343", "--engine 127.0.0.1:4242", "--project api-platform",
		"--stack dev", "--dry_run true", "--parallel 8", "--organization organization", "--root_directory " + root} {
		if !strings.Contains(args, want) {
			t.Errorf("executor arguments %q lack %q", args, want)
		}
	}
	if seen.Argv[len(seen.Argv)-1] != root || seen.Config["api-platform:s"] != "x" || !slices.Equal(seen.Secrets, []string{"api-platform:s"}) {
		t.Errorf("program, config or secret keys: %+v", seen)
	}
	if seen.Venv != filepath.Join(root, ".venv") || !strings.HasPrefix(seen.Python, filepath.Join(root, ".venv")) {
		t.Errorf("not run in the project's virtualenv: %+v", seen)
	}
}

func TestRunPluginStreamsOutputAndTheExitCode(t *testing.T) {
	root := project(t)
	pack := filepath.Join(root, "policy")
	must(t, os.MkdirAll(pack, 0o755))
	must(t, os.WriteFile(filepath.Join(pack, "__main__.py"),
		[]byte("import os, sys\nprint('41001')\nprint(os.environ['PACK_SETTING'], file=sys.stderr)\nsys.exit(3)\n"), 0o644))
	c := serve(t, &Host{Version: "3.252.0"})
	stream, err := c.RunPlugin(context.Background(), &pulumirpc.RunPluginRequest{
		Pwd: pack, Program: pack, Env: []string{"PACK_SETTING=from-the-engine"},
		Info: info(t, pack, "../.venv"), // as policy/PulumiPolicy.yaml names the project's virtualenv
	})
	must(t, err)
	var stdout, stderr string
	code := int32(-1)
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		must(t, err)
		stdout += string(msg.GetStdout())
		stderr += string(msg.GetStderr())
		if _, ok := msg.GetOutput().(*pulumirpc.RunPluginResponse_Exitcode); ok {
			code = msg.GetExitcode()
		}
	}
	if stdout != "41001\n" || stderr != "from-the-engine\n" || code != 3 {
		t.Fatalf("stdout %q stderr %q code %d", stdout, stderr, code)
	}
}

func TestAboutNamesTheInterpreter(t *testing.T) {
	root := project(t)
	c := serve(t, &Host{Version: "3.252.0"})
	resp, err := c.About(context.Background(), &pulumirpc.AboutRequest{Info: info(t, root)})
	must(t, err)
	if !strings.HasPrefix(resp.GetExecutable(), filepath.Join(root, ".venv")) || !strings.HasPrefix(resp.GetVersion(), "3.") {
		t.Fatalf("%v", resp)
	}
}
