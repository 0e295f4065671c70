// Command homeci-runner-compile prints the Kubernetes objects drone-runner-kube v1.0.0-rc.5 would
// create for one pipeline stage, configured exactly like the runner daemon: from DRONE_* environment
// variables (parsed into the runner's own daemon.Config with envconfig, plus DRONE_RUNNER_ENV_FILE and
// the namespace rules), linted with the runner's linter and compiled with its compiler.
//
// Why not `drone-runner-kube compile`: that command takes resources, volumes and environ as flags but
// has no way to set the default namespace, service account, node selector or namespace rules, so it
// cannot show what the runner configured by the homeci chart would do. This program wires the same
// packages the daemon wires (see command/daemon/daemon.go upstream), minus the server connection and
// the external secret/registry/environ plugins.
//
// Usage: homeci-runner-compile --source .drone.yml [--stage default] [--repo homeci/app] [--secret k=v]...
//
//	[--trusted] [--event push] [--branch main] [--http-url https://git.example/homeci/app.git]
//
// Output: the per-build Secret and the Pod as YAML documents (the runner's own dump format); with
// --spec-json also the compiled spec as JSON (the Pod holds placeholder images until each step starts).
// Exit 1 with the error on stderr when the linter or the config rejects the pipeline.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/drone-runners/drone-runner-kube/command/daemon"
	"github.com/drone-runners/drone-runner-kube/engine"
	"github.com/drone-runners/drone-runner-kube/engine/compiler"
	"github.com/drone-runners/drone-runner-kube/engine/linter"
	"github.com/drone-runners/drone-runner-kube/engine/policy"
	"github.com/drone-runners/drone-runner-kube/engine/resource"
	"github.com/drone/drone-go/drone"
	"github.com/drone/envsubst"
	"github.com/drone/runner-go/environ"
	"github.com/drone/runner-go/environ/provider"
	"github.com/drone/runner-go/manifest"
	"github.com/drone/runner-go/pipeline/runtime"
	"github.com/drone/runner-go/registry"
	"github.com/drone/runner-go/secret"

	"github.com/buildkite/yaml"
	"github.com/joho/godotenv"
	"github.com/kelseyhightower/envconfig"
)

// runnerVersion is stamped by the build (-X main.runnerVersion=...): the drone-runner-kube tag compiled in.
var runnerVersion = "unknown"

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "homeci-runner-compile: "+format+"\n", args...)
	os.Exit(1)
}

// loadConfig reads the runner configuration the way the daemon does at start-up.
func loadConfig() daemon.Config {
	var config daemon.Config
	if err := envconfig.Process("", &config); err != nil {
		fail("runner environment: %v", err)
	}
	config.Namespace.Rules = map[string][]string{}
	if file := config.Namespace.RulesFile; file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			fail("DRONE_NAMESPACE_RULES_FILE: %v", err)
		}
		if err := yaml.Unmarshal(raw, &config.Namespace.Rules); err != nil {
			fail("DRONE_NAMESPACE_RULES_FILE: %v", err)
		}
	}
	for ns, glob := range config.Namespace.RulesMap {
		config.Namespace.Rules[ns] = []string{glob}
	}
	if file := config.Runner.EnvFile; file != "" {
		values, err := godotenv.Read(file)
		if err != nil {
			fail("DRONE_RUNNER_ENV_FILE: %v", err)
		}
		if config.Runner.Environ == nil {
			config.Runner.Environ = map[string]string{}
		}
		for k, v := range values {
			config.Runner.Environ[k] = v
		}
	}
	if file := config.Policy.Path; file != "" {
		parsed, err := policy.ParseFile(file)
		if err != nil {
			fail("DRONE_POLICY_FILE: %v", err)
		}
		config.Policy.Parsed = parsed
	}
	return config
}

func main() {
	source := flag.String("source", ".drone.yml", "pipeline file")
	stageName := flag.String("stage", "default", "pipeline (stage) name")
	slug := flag.String("repo", "homeci/app", "repository slug owner/name")
	trusted := flag.Bool("trusted", false, "the repository is trusted")
	event := flag.String("event", "push", "build event")
	branch := flag.String("branch", "main", "branch")
	httpURL := flag.String("http-url", "", "repository HTTP clone URL")
	specJSON := flag.String("spec-json", "", "also write the compiled spec (steps with their real images) as JSON here")
	version := flag.Bool("version", false, "print the drone-runner-kube version compiled in")
	secrets := map[string]string{}
	flag.Func("secret", "a repository secret name=value (repeatable), as Drone would send it", func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("want name=value, got %q", v)
		}
		secrets[name] = value
		return nil
	})
	flag.Parse()
	if *version {
		fmt.Printf("homeci-runner-compile (drone-runner-kube %s)\n", runnerVersion)
		return
	}

	config := loadConfig()
	raw, err := os.ReadFile(*source)
	if err != nil {
		fail("%v", err)
	}
	owner, name, _ := strings.Cut(*slug, "/")
	repo := &drone.Repo{ID: 1, Namespace: owner, Name: name, Slug: *slug, Branch: *branch,
		HTTPURL: *httpURL, Trusted: *trusted, Timeout: 60}
	build := &drone.Build{ID: 1, Number: 1, Event: *event, Ref: "refs/heads/" + *branch,
		Source: *branch, Target: *branch, After: strings.Repeat("a", 40), Message: "homeci compile"}
	stage := &drone.Stage{ID: 1, Number: 1, Name: *stageName, Kind: "pipeline", Type: "kubernetes"}
	system := &drone.System{Proto: config.Client.Proto, Host: config.Client.Host}

	vars := environ.Combine(config.Runner.Environ, environ.System(system), environ.Repo(repo),
		environ.Build(build), environ.Stage(stage), environ.Link(repo, build, system))
	text, err := envsubst.Eval(string(raw), func(k string) string {
		if v := vars[k]; strings.Contains(v, "\n") {
			return fmt.Sprintf("%q", v)
		}
		return vars[k]
	})
	if err != nil {
		fail("substitution: %v", err)
	}
	parsed, err := manifest.ParseString(text)
	if err != nil {
		fail("parse: %v", err)
	}
	pipeline, err := resource.Lookup(*stageName, parsed)
	if err != nil {
		fail("stage %q: %v", *stageName, err)
	}
	if err := linter.New(config.Namespace.Rules).Lint(pipeline, repo); err != nil {
		fail("linter: %v", err)
	}

	comp := &compiler.Compiler{
		Cloner:         config.Images.Clone,
		Placeholder:    config.Images.Placeholder,
		NetrcCloneOnly: config.Netrc.CloneOnly,
		Volumes:        config.Runner.Volumes,
		Namespace:      config.Namespace.Default,
		Labels:         config.Labels.Default,
		Annotations:    config.Annotations.Default,
		ServiceAccount: config.ServiceAccount.Default,
		NodeSelector:   config.NodeSelector.Default,
		Privileged:     append(config.Runner.Privileged, compiler.Privileged...),
		Policies:       config.Policy.Parsed,
		Registry:       registry.Combine(registry.File(config.Docker.Config)),
		Secret:         secret.Combine(secret.StaticVars(config.Runner.Secrets)),
		Environ:        provider.Static(config.Runner.Environ),
		Resources: compiler.Resources{
			Limits: compiler.ResourceObject{CPU: config.Resources.LimitCPU,
				Memory: int64(config.Resources.LimitMemory)},
			MinRequests: compiler.ResourceObject{CPU: config.Resources.MinRequestCPU,
				Memory: int64(config.Resources.MinRequestMemory)},
		},
		StageRequests: compiler.ResourceObject{CPU: config.Resources.RequestCPU,
			Memory: int64(config.Resources.RequestMemory)},
		Tmate: compiler.Tmate{Image: config.Tmate.Image, Enabled: config.Tmate.Enabled,
			Server: config.Tmate.Server, Port: config.Tmate.Port, RSA: config.Tmate.RSA,
			ED25519: config.Tmate.ED25519},
	}
	spec := comp.Compile(context.Background(), runtime.CompilerArgs{
		Pipeline: pipeline, Manifest: parsed, Build: build, Repo: repo, Stage: stage, System: system,
		Secret: secret.StaticVars(secrets),
		Netrc:  &drone.Netrc{Machine: "git.invalid", Login: "token", Password: "x-oauth-basic"},
	})
	if *specJSON != "" {
		raw, err := json.MarshalIndent(spec, "", "  ")
		if err != nil {
			fail("encoding the spec: %v", err)
		}
		if err := os.WriteFile(*specJSON, raw, 0o644); err != nil {
			fail("%v", err)
		}
	}
	engine.Dump(os.Stdout, spec.(*engine.Spec))
}
