// Command coredns is CoreDNS with only the plugins the homeci local cluster's Corefile uses
// (cluster DNS for the real node, and an answer for the stack's public names). Without `forward`,
// names outside the cluster answer SERVFAIL: the node has no route out, by design.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
)

// The plugins' execution order: the relative order of upstream's plugin.cfg for these plugins.
var order = []string{
	"reload", "ready", "health", "errors", "log", "loadbalance", "cache", "rewrite",
	"template", "hosts", "kubernetes", "loop",
}

func init() {
	dnsserver.Directives = order
}

func main() {
	coremain.Run()
}
