//go:build tools

// Package tools pins the kaniko executor into this wrapper module so `go mod tidy` keeps it.
package tools

import _ "github.com/chainguard-dev/kaniko/cmd/executor"
