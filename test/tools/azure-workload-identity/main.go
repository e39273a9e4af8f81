// Command azure-workload-identity-webhook serves the Azure workload identity mutating webhook of
// github.com/Azure/azure-workload-identity (pkg/webhook, v1.6.0: every decision about what a pod gets) out of
// cluster, for `make dev` and the end-to-end tests (hack/peers.sh).
//
// It is upstream's cmd/webhook/main.go minus certificate rotation (hack/peers.sh brings its own certificates),
// plus --host and --port: upstream always listens on controller-runtime's default, 0.0.0.0:9443, so two local
// clusters on one machine (make dev and make test) would share one webhook and reach it with the wrong CA.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"monis.app/mlog"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/Azure/azure-workload-identity/pkg/metrics"
	"github.com/Azure/azure-workload-identity/pkg/version"
	wh "github.com/Azure/azure-workload-identity/pkg/webhook"
)

func main() {
	if err := run(); err != nil {
		mlog.Fatal(err)
	}
}

func run() error {
	defer mlog.Setup()()

	audience := flag.String("audience", "", "Audience for service account token")
	certDir := flag.String("webhook-cert-dir", "/certs", "Directory with the serving certificate (tls.crt, tls.key)")
	host := flag.String("host", "127.0.0.1", "The address the webhook server binds to")
	port := flag.Int("port", 9443, "The port the webhook server binds to")
	healthAddr := flag.String("health-addr", "0", "The address the health endpoint binds to (0: off)")
	metricsAddr := flag.String("metrics-addr", "0", "The address the metrics endpoint binds to (0: off)")
	logLevel := flag.String("log-level", "", "In order of increasing verbosity: unset (empty string), info, debug, trace and all.")
	flag.Parse()

	ctx := ctrl.SetupSignalHandler()
	if err := mlog.ValidateAndSetLogLevelAndFormatGlobally(ctx, mlog.LogSpec{Level: mlog.LogLevel(*logLevel), Format: mlog.FormatJSON}); err != nil {
		return fmt.Errorf("invalid --log-level set: %w", err)
	}
	log.SetLogger(mlog.Logr())

	config := ctrl.GetConfigOrDie()
	config.UserAgent = version.GetUserAgent("webhook")
	if err := metrics.InitMetricsExporter("prometheus"); err != nil {
		return fmt.Errorf("failed to initialize metrics exporter: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(config, ctrl.Options{
		Scheme:                 scheme,
		HealthProbeBindAddress: *healthAddr,
		Metrics:                metricsserver.Options{BindAddress: *metricsAddr},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    *host,
			Port:    *port,
			CertDir: *certDir,
			TLSOpts: []func(c *tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }},
		}),
		MapperProvider: apiutil.NewDynamicRESTMapper,
	})
	if err != nil {
		return fmt.Errorf("unable to set up controller manager: %w", err)
	}
	mutator, err := wh.NewPodMutator(mgr.GetClient(), mgr.GetAPIReader(), *audience, mgr.GetScheme(), mgr.GetConfig(), "", "")
	if err != nil {
		return fmt.Errorf("unable to set up pod mutator: %w", err)
	}
	mgr.GetWebhookServer().Register("/mutate-v1-pod", &webhook.Admission{Handler: mutator})
	if err := mgr.AddReadyzCheck("readyz", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "serving the Azure workload identity webhook on https://%s:%d/mutate-v1-pod\n", *host, *port)
	return mgr.Start(ctx)
}
