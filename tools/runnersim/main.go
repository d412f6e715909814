// Command runnersim measures one controller with many runners: N
// lightweight runners in this one process (each its own NATS connection,
// identity and durable work consumer, as a real runner has; they run no
// plugins: an execution is answered at once) connect to a controller
// started from bin/postee. It reports the bootstrap storm (all N start at
// once), the controller's memory and CPU at rest with N runners, and the
// dispatch latency to one given runner (POST to the controller → the
// runner holds the work).
//
//	go run ./tools/runnersim -postee bin/postee -plugin-dir bin/plugins -runners 1000
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/postee-dev/postee/core/cluster"
	"github.com/postee-dev/postee/core/record"
)

func main() {
	var (
		bin, pluginDir string
		runners        int
		events         int
		rest           time.Duration
	)
	flag.StringVar(&bin, "postee", "bin/postee", "postee binary")
	flag.StringVar(&pluginDir, "plugin-dir", "bin/plugins", "plugin directory")
	flag.IntVar(&runners, "runners", 1000, "runners to connect")
	flag.IntVar(&events, "events", 200, "events dispatched to one runner, one at a time")
	flag.DurationVar(&rest, "rest", 10*time.Second, "how long the controller is watched at rest")
	flag.Parse()
	if err := run(bin, pluginDir, runners, events, rest, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "runnersim:", err)
		os.Exit(1)
	}
}

func name(i int) string { return fmt.Sprintf("node-%04d", i) }

func run(bin, pluginDir string, n, events int, rest time.Duration, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "runnersim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	target := name(n / 2)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "routes:\n- name: probe\n  input: input.kind == \"probe\"\n  actions: [on-target]\n  template: raw\n"+
		"templates:\n- name: raw\n  rego-package: postee.rawmessage.json\n"+
		"actions:\n- name: on-target\n  runs-on: %s\n  type: http\n  enable: true\n  url: http://127.0.0.1:9/\n  method: POST\nrunners:\n", target)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&cfg, "- name: %s\n", name(i))
	}
	cfgFile := filepath.Join(tmp, "cfg.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	natsPort, err := freePort()
	if err != nil {
		return err
	}
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(natsPort)
	cmd := exec.Command(bin, "--controller-mode", "--controller-url", natsURL, "--cfgfile", cfgFile, "--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", pluginDir)
	cmd.Env = append(os.Environ(), "PATH_TO_DB="+filepath.Join(tmp, "webhooks.db"))
	stderr, _ := cmd.StderrPipe()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	addr, err := waitListening(stderr)
	if err != nil {
		return err
	}
	pid := cmd.Process.Pid
	rss0, _ := status(pid, "VmRSS:")
	fmt.Fprintf(out, "controller pid %d on %s, NATS %s; RSS before runners %s\n", pid, addr, natsURL, mib(rss0))

	// The bootstrap storm: every runner at once.
	var (
		mu       sync.Mutex
		boots    []time.Duration
		got      = make(chan time.Time, events)
		rs       = make([]*cluster.Runner, n)
		wg       sync.WaitGroup
		failures []error
	)
	cpuStorm0, _ := cpu(pid)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			t0 := time.Now()
			isTarget := name(i) == target
			r, err := cluster.StartRunner(ctx, cluster.RunnerSettings{
				Name: name(i), URL: natsURL, StorePath: filepath.Join(tmp, "r", name(i)+".db"),
				Load: func(context.Context, *cluster.Part) error { return nil },
				Execute: func(_ context.Context, w *record.Work) record.Execution {
					if isTarget {
						got <- time.Now()
					}
					return record.Execution{ID: w.ExecutionID, EventID: w.EventID, Route: w.Route, Action: w.Action, Started: time.Now()}
				},
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, fmt.Errorf("%s: %w", name(i), err))
				return
			}
			rs[i] = r
			boots = append(boots, time.Since(t0))
		}(i)
	}
	wg.Wait()
	storm := time.Since(start)
	cpuStorm1, _ := cpu(pid)
	defer func() {
		for _, r := range rs {
			if r != nil {
				r.Close()
			}
		}
	}()
	if len(failures) > 0 {
		return fmt.Errorf("%d runners failed to start, first: %v", len(failures), failures[0])
	}
	sort.Slice(boots, func(a, b int) bool { return boots[a] < boots[b] })
	rssStorm, _ := status(pid, "VmHWM:")

	// At rest.
	cpu0, _ := cpu(pid)
	time.Sleep(rest) // measuring idle CPU: the controller is left alone for this long
	cpu1, _ := cpu(pid)
	rssRest, _ := status(pid, "VmRSS:")

	// Dispatch latency to one runner.
	var lat []time.Duration
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < events; i++ {
		t0 := time.Now()
		resp, err := client.Post("http://"+addr+"/", "application/json", bytes.NewReader([]byte(fmt.Sprintf(`{"kind":"probe","n":%d}`, i))))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("POST: %s", resp.Status)
		}
		select {
		case at := <-got:
			lat = append(lat, at.Sub(t0))
		case <-time.After(30 * time.Second):
			return fmt.Errorf("event %d never reached %s", i, target)
		}
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })

	fmt.Fprintf(out, "\n| %d runners on one controller | value |\n|---|---|\n", n)
	fmt.Fprintf(out, "| bootstrap storm: all connected and configured | %s |\n", storm.Round(time.Millisecond))
	fmt.Fprintf(out, "| one runner's bootstrap, p50 / p99 / max | %s / %s / %s |\n", pct(boots, 0.5), pct(boots, 0.99), boots[len(boots)-1].Round(time.Millisecond))
	fmt.Fprintf(out, "| controller CPU during the storm | %s |\n", (cpuStorm1 - cpuStorm0).Round(time.Millisecond))
	fmt.Fprintf(out, "| controller peak RSS (storm) | %s |\n", mib(rssStorm))
	fmt.Fprintf(out, "| controller RSS at rest, before runners → with them | %s → %s (%s a runner) |\n", mib(rss0), mib(rssRest), kib((rssRest-rss0)/int64(n)))
	fmt.Fprintf(out, "| controller CPU at rest | %.2f%% of a core |\n", 100*float64(cpu1-cpu0)/float64(rest))
	fmt.Fprintf(out, "| dispatch latency to %s (POST → runner has the work), p50 / p99 | %s / %s |\n", target, pct(lat, 0.5), pct(lat, 0.99))
	return nil
}

var listenRe = regexp.MustCompile(`webhook listening: scheme=http addr=(\S+)`)

func waitListening(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	found := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case a, ok := <-found:
		if !ok {
			return "", fmt.Errorf("controller exited before listening")
		}
		return a, nil
	case <-time.After(60 * time.Second):
		return "", fmt.Errorf("controller did not listen within 60s")
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(p*float64(len(d))))].Round(10 * time.Microsecond)
}

func status(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", key, pid)
}

// cpu is a process's user+system CPU time.
func cpu(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ 100
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10)) }
