package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	state         string
	kubeconfig    string
	apiserverPort int
	expireWatches bool
}

func parseOptions(cmd string, args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.StringVar(&o.state, "state", "", "directory for PKI, logs, pid and state files")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "where 'up' writes the admin kubeconfig")
	fs.IntVar(&o.apiserverPort, "apiserver-port", 0, "apiserver port (0: any free port)")
	fs.BoolVar(&o.expireWatches, "expire-watches", false, "restart-apiserver: compact etcd first, so resumed watches get 410 Gone")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.state == "" {
		return o, errors.New("--state is required")
	}
	abs, err := filepath.Abs(o.state)
	if err != nil {
		return o, err
	}
	o.state = abs
	if cmd == "up" && o.kubeconfig == "" {
		return o, errors.New("--kubeconfig is required")
	}
	return o, nil
}

func pidFile(dir string) string { return filepath.Join(dir, "controlplane.pid") }

// up starts the supervisor in its own session, in the background, unless one already runs for this state
// directory, and returns once the control plane is ready (or prints why it is not).
func up(o options) error {
	if err := os.MkdirAll(o.state, 0o700); err != nil {
		return err
	}
	if st, ok := running(o.state); ok && st.Ready {
		p := pki{dir: filepath.Join(o.state, "pki")}
		if c, err := adminHTTPClient(p); err == nil && get(c, st.APIServer+"/readyz") == http.StatusOK {
			fmt.Printf("control plane already running at %s (pid %d)\n", st.APIServer, st.PID)
			return writeKubeconfig(o.kubeconfig, st.APIServer, p, p.AdminCert(), p.AdminKey())
		}
	}
	if err := down(o); err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(o.state, "supervisor.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	args := []string{"serve", "--state", o.state, "--apiserver-port", strconv.Itoa(o.apiserverPort)}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(pidFile(o.state), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	started := time.Now()
	deadline := time.After(4 * time.Minute)
	for {
		if st, err := readState(o.state); err == nil && st.PID == cmd.Process.Pid {
			if st.Failed != "" {
				return fmt.Errorf("%s\n%s", st.Failed, tail(logPath))
			}
			if st.Ready {
				p := pki{dir: filepath.Join(o.state, "pki")}
				fmt.Printf("control plane ready at %s in %.1fs (pid %d, logs in %s)\n",
					st.APIServer, time.Since(started).Seconds(), st.PID, o.state)
				return writeKubeconfig(o.kubeconfig, st.APIServer, p, p.AdminCert(), p.AdminKey())
			}
		}
		select {
		case err := <-exited:
			_ = os.Remove(pidFile(o.state))
			return fmt.Errorf("supervisor exited (%v)\n%s", err, tail(logPath))
		case <-deadline:
			_ = down(o)
			return fmt.Errorf("not ready after 4m\n%s", tail(logPath))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// down stops the supervisor recorded in the pid file (only if that pid is still our supervisor for this state
// directory) and any component it left behind.
func down(o options) error {
	st, _ := readState(o.state)
	pid, ok := supervisorPID(o.state)
	if ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, 30*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 5*time.Second)
		}
		fmt.Printf("control plane stopped (pid %d)\n", pid)
	}
	if st != nil {
		self, _ := os.Executable()
		for _, child := range st.Children {
			if strings.HasPrefix(cmdline(child), self) {
				_ = syscall.Kill(child, syscall.SIGKILL)
			}
		}
	}
	_ = os.Remove(pidFile(o.state))
	_ = os.Remove(filepath.Join(o.state, "state.json"))
	return nil
}

// restartAPIServer asks the running supervisor to restart kube-apiserver (SIGHUP) and waits until it is ready again.
func restartAPIServer(o options) error {
	st, ok := running(o.state)
	if !ok || !st.Ready {
		return errors.New("not running")
	}
	req := ""
	if o.expireWatches {
		req = "expire-watches"
	}
	if err := os.WriteFile(filepath.Join(o.state, "restart-request"), []byte(req), 0o600); err != nil {
		return err
	}
	before := st.Restarts
	started := time.Now()
	if err := syscall.Kill(st.PID, syscall.SIGHUP); err != nil {
		return err
	}
	for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		now, err := readState(o.state)
		if err != nil {
			continue
		}
		if now.Failed != "" {
			return fmt.Errorf("failed: %s", now.Failed)
		}
		if now.Restarts > before {
			fmt.Printf("kube-apiserver restarted in %.1fs (pid %d)\n", time.Since(started).Seconds(), now.Children["kube-apiserver"])
			return nil
		}
	}
	return errors.New("kube-apiserver was not ready again within 4m")
}

func status(o options) error {
	st, ok := running(o.state)
	if !ok {
		return errors.New("not running")
	}
	if !st.Ready {
		if st.Failed != "" {
			return fmt.Errorf("failed: %s", st.Failed)
		}
		return fmt.Errorf("starting (pid %d)", st.PID)
	}
	p := pki{dir: filepath.Join(o.state, "pki")}
	c, err := adminHTTPClient(p)
	if err != nil {
		return err
	}
	code := get(c, st.APIServer+"/readyz")
	fmt.Printf("running: pid %d, apiserver %s (/readyz %d), issuer %s, etcd %s\n", st.PID, st.APIServer, code, st.Issuer, st.Etcd)
	if code != http.StatusOK {
		return errors.New("apiserver is not ready")
	}
	return nil
}

func running(dir string) (*state, bool) {
	pid, ok := supervisorPID(dir)
	if !ok {
		return nil, false
	}
	st, err := readState(dir)
	if err != nil || st.PID != pid {
		return &state{PID: pid}, true
	}
	return st, true
}

// supervisorPID returns the pid from the pid file if that process is alive and is our supervisor for this state
// directory, so a recycled pid never gets a signal from us.
func supervisorPID(dir string) (int, bool) {
	b, err := os.ReadFile(pidFile(dir))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	cl := cmdline(pid)
	return pid, strings.Contains(cl, " serve ") && strings.Contains(cl, " "+dir+" ")
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st state
	return &st, json.Unmarshal(b, &st)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "--- last lines of " + path + " ---\n" + strings.Join(lines, "\n")
}

// writeKubeconfig writes a kubeconfig with the CA and client certificate inlined, so the file can be copied
// anywhere and read by kubectl and @kubernetes/client-node alike.
func writeKubeconfig(path, server string, p pki, certFile, keyFile string) error {
	data := func(f string) (string, error) {
		b, err := os.ReadFile(f)
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := data(p.CACert())
	if err != nil {
		return err
	}
	cert, err := data(certFile)
	if err != nil {
		return err
	}
	key, err := data(keyFile)
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: keyless-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: keyless-local-admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: keyless-local
  context:
    cluster: keyless-local
    user: keyless-local-admin
current-context: keyless-local
`, server, ca, cert, key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(cfg), 0o600)
}
