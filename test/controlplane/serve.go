package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/embed"
)

// state is what a running supervisor publishes in DIR/state.json for `up`, `status` and `down`.
type state struct {
	PID       int            `json:"pid"`
	Ready     bool           `json:"ready"`
	Failed    string         `json:"failed,omitempty"`
	APIServer string         `json:"apiserver"`
	Issuer    string         `json:"issuer"`
	Etcd      string         `json:"etcd"`
	Children  map[string]int `json:"children"`
	// Restarts counts kube-apiserver restarts asked for with `restart-apiserver` (SIGHUP), so the caller can wait
	// for its own to finish.
	Restarts int `json:"restarts"`
}

// restartRequest is the file `restart-apiserver` writes before SIGHUP: "expire-watches" compacts etcd first.
func restartRequest(dir string) string { return filepath.Join(dir, "restart-request") }

// controllers run by kube-controller-manager: garbage collection and namespace deletion (which envtest lacks),
// the default ServiceAccount and kube-root-ca.crt in every namespace, and the workload controllers that turn a
// Deployment into pods. kube-scheduler binds those pods to a node, but no node exists until kwok brings a fake
// one (hack/peers.sh); without it pods stay Pending, and their spec is what tests read. The node lifecycle
// controller lifts the not-ready taint the apiserver puts on every new node once kwok reports it Ready, and the
// pod garbage collector removes the pods of a node that was deleted, as in a real cluster.
var controllers = []string{
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"clusterrole-aggregation-controller",
	"node-lifecycle-controller",
	"pod-garbage-collector-controller",
}

func serve(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	p := pki{dir: filepath.Join(o.state, "pki")}
	if err := p.ensure(); err != nil {
		return fmt.Errorf("generate PKI: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	if o.apiserverPort != 0 {
		ports[0] = o.apiserverPort
	}
	apiURL := "https://127.0.0.1:" + strconv.Itoa(ports[0])
	st := &state{PID: os.Getpid(), APIServer: apiURL, Issuer: apiURL, Children: map[string]int{}}

	dataDir, err := os.MkdirTemp("", "keyless-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	etcd, err := startEtcd(dataDir, ports[1], ports[2], filepath.Join(o.state, "etcd.log"))
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	defer etcd.Close()
	st.Etcd = etcd.Clients[0].Addr().String()

	exited := make(chan error, 3)
	// kube-apiserver reports its exit apart from the others: a restart asked for is not a failure.
	apiExited := make(chan error, 1)
	apiserver, err := startChild(o.state, "kube-apiserver", apiserverArgs(p, st, ports[0]), apiExited)
	if err != nil {
		return err
	}
	defer func() { terminate(apiserver) }()
	st.Children["kube-apiserver"] = apiserver.Process.Pid
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	client, err := adminHTTPClient(p)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, apiExited, func() bool { return get(client, apiURL+"/readyz") == http.StatusOK }); err != nil {
		return publishFailure(o.state, st, "kube-apiserver never became ready", err)
	}

	kubeconfig := filepath.Join(o.state, "controller-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfig, apiURL, p, p.ControllerCert(), p.ControllerKey()); err != nil {
		return err
	}
	kcm, err := startChild(o.state, "kube-controller-manager", controllerManagerArgs(p, kubeconfig), exited)
	if err != nil {
		return err
	}
	defer terminate(kcm)
	st.Children["kube-controller-manager"] = kcm.Process.Pid

	schedulerKubeconfig := filepath.Join(o.state, "scheduler.kubeconfig")
	if err := writeKubeconfig(schedulerKubeconfig, apiURL, p, p.SchedulerCert(), p.SchedulerKey()); err != nil {
		return err
	}
	sched, err := startChild(o.state, "kube-scheduler", schedulerArgs(schedulerKubeconfig), exited)
	if err != nil {
		return err
	}
	defer terminate(sched)
	st.Children["kube-scheduler"] = sched.Process.Pid

	// The default ServiceAccount appears only once the controller-manager runs its controllers, so this is the
	// point at which namespaces, garbage collection and TokenRequest for fresh namespaces all work.
	defaultSA := apiURL + "/api/v1/namespaces/default/serviceaccounts/default"
	if err := waitFor(ctx, exited, func() bool { return get(client, defaultSA) == http.StatusOK }); err != nil {
		return publishFailure(o.state, st, "kube-controller-manager never created the default ServiceAccount", err)
	}

	st.Ready = true
	if err := writeState(o.state, st); err != nil {
		return err
	}
	fmt.Printf("control plane ready: apiserver %s, etcd %s\n", apiURL, st.Etcd)

	for {
		select {
		case <-ctx.Done():
			fmt.Println("stopping on signal")
			return nil
		case err := <-exited:
			return publishFailure(o.state, st, "a component exited", err)
		case err := <-apiExited:
			return publishFailure(o.state, st, "a component exited", err)
		case <-hup:
			// The same apiserver on the same port and etcd, as when a real control plane rolls its apiserver:
			// clients see their connections dropped, then resume their watches from the versions they had.
			req, _ := os.ReadFile(restartRequest(o.state))
			_ = os.Remove(restartRequest(o.state))
			terminate(apiserver)
			<-apiExited
			if strings.TrimSpace(string(req)) == "expire-watches" {
				// Compacting to the newest revision makes every resourceVersion a client holds too old: each
				// watch resumed after the restart is answered 410 Gone and must relist.
				rev := etcd.Server.KV().Rev()
				if _, err := etcd.Server.Compact(ctx, &etcdserverpb.CompactionRequest{Revision: rev, Physical: true}); err != nil {
					return publishFailure(o.state, st, "etcd compaction before the restart failed", err)
				}
				fmt.Printf("etcd compacted to revision %d\n", rev)
			}
			if apiserver, err = startChild(o.state, "kube-apiserver", apiserverArgs(p, st, ports[0]), apiExited); err != nil {
				return publishFailure(o.state, st, "kube-apiserver did not restart", err)
			}
			st.Children["kube-apiserver"] = apiserver.Process.Pid
			if err := waitFor(ctx, apiExited, func() bool { return get(client, apiURL+"/readyz") == http.StatusOK }); err != nil {
				return publishFailure(o.state, st, "kube-apiserver never became ready after a restart", err)
			}
			st.Restarts++
			if err := writeState(o.state, st); err != nil {
				return err
			}
			fmt.Printf("kube-apiserver restarted (%d)\n", st.Restarts)
		}
	}
}

func apiserverArgs(p pki, st *state, port int) []string {
	return []string{
		"--etcd-servers=http://" + st.Etcd,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p.ServingCert(),
		"--tls-private-key-file=" + p.ServingKey(),
		"--client-ca-file=" + p.CACert(),
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + st.Issuer,
		"--service-account-key-file=" + p.ServiceAccountPub(),
		"--service-account-signing-key-file=" + p.ServiceAccountKey(),
		"--service-cluster-ip-range=10.0.0.0/24",
		// The apiserver cannot publish a loopback address as the `kubernetes` Service's endpoint.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=0",
	}
}

func controllerManagerArgs(p pki, kubeconfig string) []string {
	list := ""
	for i, c := range controllers {
		if i > 0 {
			list += ","
		}
		list += c
	}
	return []string{
		"--kubeconfig=" + kubeconfig,
		// Each controller acts as its own ServiceAccount with the bootstrap policy's per-controller role, as in a
		// real cluster; the controller-manager's own identity alone cannot, for example, empty a namespace.
		"--use-service-account-credentials=true",
		"--controllers=" + list,
		"--root-ca-file=" + p.CACert(),
		"--service-account-private-key-file=" + p.ServiceAccountKey(),
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
		"--v=0",
	}
}

func schedulerArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
		"--v=0",
	}
}

func startEtcd(dir string, clientPort, peerPort int, logFile string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{logFile}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("etcd was not ready within 60s")
	}
}

// startChild runs this binary as one component, logging to DIR/NAME.log. The child gets SIGKILL if this
// supervisor dies, so a crashed supervisor never leaves an apiserver behind. Pdeathsig fires when the OS thread
// that started the child exits, so the thread stays locked for the child's lifetime.
func startChild(dir, name string, args []string, exited chan<- error) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// Appended to, so that a restarted apiserver's log follows the one before it.
	log, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		log.Close()
		exited <- fmt.Errorf("%s exited: %v (see %s)", name, err, log.Name())
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

// terminate asks a component to stop and kills it if it has not within ten seconds.
func terminate(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

func waitFor(ctx context.Context, exited <-chan error, ok func() bool) error {
	deadline := time.After(3 * time.Minute)
	for !ok() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return err
		case <-deadline:
			return errors.New("timed out after 3m")
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func publishFailure(dir string, st *state, what string, err error) error {
	st.Failed = fmt.Sprintf("%s: %v", what, err)
	_ = writeState(dir, st)
	return errors.New(st.Failed)
}

func adminHTTPClient(p pki) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(p.AdminCert(), p.AdminKey())
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(p.CACert())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

func get(c *http.Client, u string) int {
	resp, err := c.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}
