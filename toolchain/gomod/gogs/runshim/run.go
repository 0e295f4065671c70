// Package run is a minimal stand-in for github.com/sourcegraph/run v0.12.0, written for homeci.
//
// Gogs v0.14.3 imports that package in exactly one place (internal/ssh: generating host keys with
// ssh-keygen for the builtin SSH server). Upstream's package depends on go.bobheadxi.dev/streamline,
// which the Go module proxy refuses to serve (403), so the wrapper module replaces it with this file.
// It offers only what Gogs calls: Arg, Cmd(...).Run().Wait(). Arguments are passed to exec without a
// shell, so Arg returns its value unchanged (upstream shell-quotes it because it re-parses a string).
package run

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Arg returns v as one argument.
func Arg(v string) string { return v }

// Command is a prepared command.
type Command struct {
	ctx   context.Context
	parts []string
}

// Cmd prepares parts[0] with the remaining parts as its arguments.
func Cmd(ctx context.Context, parts ...string) *Command { return &Command{ctx: ctx, parts: parts} }

// Output is the result of Run.
type Output interface{ Wait() error }

type result struct{ err error }

func (r result) Wait() error { return r.err }

// Run executes the command and waits for it; Wait reports a failure with its stderr.
func (c *Command) Run() Output {
	if len(c.parts) == 0 {
		return result{fmt.Errorf("run: empty command")}
	}
	cmd := exec.CommandContext(c.ctx, c.parts[0], c.parts[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return result{fmt.Errorf("%s: %w: %s", c.parts[0], err, strings.TrimSpace(stderr.String()))}
	}
	return result{nil}
}
