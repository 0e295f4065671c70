// Minimal stand-in for github.com/sourcegraph/run, see run.go.
module github.com/sourcegraph/run

go 1.22
