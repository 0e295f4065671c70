// Wrapper module that builds Gogs for the T2 real-program tests (tests/realprog).
// The module proxy serves Gogs v0.14.3 only as github.com/gogs/gogs@v0.14.3, while its go.mod
// declares `module gogs.io/gogs`; requiring gogs.io/gogs and replacing it with the GitHub path
// lets `go build gogs.io/gogs` fetch the tagged source. Gogs stamps its own version in gogs.go
// (conf.App.Version = "0.14.3"), so `gogs --version` reports 0.14.3 with no ldflags.
// Refresh with: go mod tidy (then commit go.mod and go.sum).
module homeci.invalid/gomod/gogs

go 1.26.0

require gogs.io/gogs v0.14.3

replace gogs.io/gogs => github.com/gogs/gogs v0.14.3

tool gogs.io/gogs
