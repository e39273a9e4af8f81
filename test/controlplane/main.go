// Command controlplane runs a real Kubernetes control plane on 127.0.0.1 for Keyless's tests and `make dev`:
// embedded etcd, kube-apiserver, kube-controller-manager and kube-scheduler, all built from the upstream Go modules.
//
// One binary plays every part. `up`, `down` and `status` manage a background supervisor (`serve`), which starts
// etcd in-process and runs kube-apiserver, kube-controller-manager and kube-scheduler as child processes of this
// same binary (the sub-commands of the same names). Separate processes keep the components' global state (flags,
// feature gates, metrics registries) apart exactly as in a real cluster.
package main

import (
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = `usage:
  controlplane up     --state DIR --kubeconfig FILE   start in the background (idempotent), wait until ready
  controlplane down   --state DIR                     stop what 'up' started
  controlplane status --state DIR                     report whether it runs and where
  controlplane serve  --state DIR                     run in the foreground (what 'up' starts)
  controlplane restart-apiserver --state DIR [--expire-watches]
                                                      restart kube-apiserver on the same port and etcd; with
                                                      --expire-watches, compact etcd first so every watch resumed
                                                      after it is answered 410 Gone`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "kube-apiserver":
		c := apiserver.NewAPIServerCommand()
		c.SetArgs(args)
		os.Exit(cli.Run(c))
	case "kube-controller-manager":
		c := controllermanager.NewControllerManagerCommand()
		c.SetArgs(args)
		os.Exit(cli.Run(c))
	case "kube-scheduler":
		c := scheduler.NewSchedulerCommand()
		c.SetArgs(args)
		os.Exit(cli.Run(c))
	case "up", "down", "status", "serve", "restart-apiserver":
		opts, err := parseOptions(cmd, args)
		if err != nil {
			fmt.Fprintf(os.Stderr, "controlplane %s: %v\n%s\n", cmd, err, usage)
			os.Exit(2)
		}
		run := map[string]func(options) error{"up": up, "down": down, "status": status, "serve": serve, "restart-apiserver": restartAPIServer}[cmd]
		if err := run(opts); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane %s: %v\n", cmd, err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}
