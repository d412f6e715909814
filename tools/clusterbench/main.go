// Command clusterbench measures controllers on a NATS JetStream cluster
// against the embedded setup: events/s accepted and delivered, and the
// latency of accepting (the POST, which returns once the event is stored)
// and of delivery (POST → the action's request at a sink), with
//
//   - one controller with its embedded NATS (the event in bbolt, R1),
//   - one controller on a 3-node nats-server cluster (R3),
//   - two controllers on that cluster, the load split between them.
//
// The ratio of the last two is the scaling figure on this machine.
//
//	go run ./tools/clusterbench -postee bin/postee -plugin-dir bin/plugins -nats-server bin/nats-server
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	postee, pluginDir, natsServer string
	senders                       int
	duration                      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.postee, "postee", "bin/postee", "postee binary")
	flag.StringVar(&o.pluginDir, "plugin-dir", "bin/plugins", "plugin directory")
	flag.StringVar(&o.natsServer, "nats-server", "bin/nats-server", "nats-server binary (go build -o bin/nats-server github.com/nats-io/nats-server/v2)")
	flag.IntVar(&o.senders, "senders", 32, "concurrent senders")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each run")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

type result struct {
	mode                 string
	accepted, delivered  int
	acceptRate, delivery float64
	accept50, accept99   time.Duration
	e2e50, e2e99         time.Duration
}

func run(o options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var procs []*proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	var results []result

	// Embedded.
	sk := startSink()
	cfg := writeFile(tmp, "cfg.yaml", config(sk.url))
	emb, err := startPostee(o, tmp, "embedded", cfg, "--controller-mode", "--controller-url", "127.0.0.1:"+freePort())
	if err != nil {
		return err
	}
	procs = append(procs, emb)
	results = append(results, measure(o, "1 controller, embedded NATS + bbolt", []string{emb.addr}, sk))
	emb.stop()

	// The cluster.
	urls, nodes, err := startCluster(o, tmp)
	procs = append(procs, nodes...)
	if err != nil {
		return err
	}
	sk2 := startSink()
	cfg2 := writeFile(tmp, "cfg2.yaml", config(sk2.url))
	args := []string{"--controller-mode", "--nats-url", urls}
	c1, err := startPostee(o, tmp, "c1", cfg2, args...)
	if err != nil {
		return err
	}
	procs = append(procs, c1)
	results = append(results, measure(o, "1 controller, 3-node cluster (R3)", []string{c1.addr}, sk2))
	c2, err := startPostee(o, tmp, "c2", cfg2, args...)
	if err != nil {
		return err
	}
	procs = append(procs, c2)
	results = append(results, measure(o, "2 controllers, 3-node cluster (R3)", []string{c1.addr, c2.addr}, sk2))

	fmt.Fprintf(out, "\n%d senders, %s a run; events with one local http action\n\n", o.senders, o.duration)
	fmt.Fprintln(out, "| setup | accepted events/s | delivered events/s | accept p50 / p99 | POST → action p50 / p99 |")
	fmt.Fprintln(out, "|---|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(out, "| %s | %.0f | %.0f | %s / %s | %s / %s |\n", r.mode, r.acceptRate, r.delivery, r.accept50, r.accept99, r.e2e50, r.e2e99)
	}
	if len(results) == 3 && results[1].delivery > 0 {
		fmt.Fprintf(out, "\nscaling, 2 controllers / 1: %.2fx delivered; accept p50 added by R3 over embedded: %s\n",
			results[2].delivery/results[1].delivery, results[1].accept50-results[0].accept50)
	}
	return nil
}

func config(sinkURL string) string {
	return fmt.Sprintf(`routes:
- name: load
  input: input.kind == "load"
  actions: [to-sink]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: to-sink
  type: http
  enable: true
  method: POST
  url: %s
`, sinkURL)
}

// measure sends for o.duration to addrs in turn and waits (bounded) for
// the deliveries.
func measure(o options, mode string, addrs []string, sk *sink) result {
	sk.reset()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		started = map[int]time.Time{}
		wg      sync.WaitGroup
	)
	end := time.Now().Add(o.duration)
	for s := 0; s < o.senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for time.Now().Before(end) {
				n := int(next.Add(1))
				addr := addrs[n%len(addrs)]
				t0 := time.Now()
				resp, err := client.Post("http://"+addr+"/", "application/json", bytes.NewReader([]byte(fmt.Sprintf(`{"kind":"load","n":%d}`, n))))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					lat = append(lat, time.Since(t0))
					started[n] = t0
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	sendEnd := time.Now()
	// Wait for the backlog (bounded).
	for deadline := time.Now().Add(60 * time.Second); sk.count() < len(started) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	arrivals := sk.snapshot()
	var e2e []time.Duration
	last := sendEnd
	for n, t0 := range started {
		if at, ok := arrivals[n]; ok {
			e2e = append(e2e, at.Sub(t0))
			if at.After(last) {
				last = at
			}
		}
	}
	sortD(lat)
	sortD(e2e)
	r := result{mode: mode, accepted: len(started), delivered: len(e2e),
		acceptRate: float64(len(started)) / o.duration.Seconds(),
		delivery:   float64(len(e2e)) / last.Sub(end.Add(-o.duration)).Seconds(),
		accept50:   pct(lat, .5), accept99: pct(lat, .99), e2e50: pct(e2e, .5), e2e99: pct(e2e, .99)}
	fmt.Fprintf(os.Stderr, "%s: %d accepted, %d delivered\n", mode, r.accepted, r.delivered)
	return r
}

type sink struct {
	url      string
	mu       sync.Mutex
	arrivals map[int]time.Time
}

func startSink() *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &sink{url: "http://" + ln.Addr().String() + "/", arrivals: map[int]time.Time{}}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				N int `json:"n"`
			}
			b, _ := io.ReadAll(r.Body)
			now := time.Now()
			if json.Unmarshal(b, &body) == nil {
				s.mu.Lock()
				if _, ok := s.arrivals[body.N]; !ok {
					s.arrivals[body.N] = now
				}
				s.mu.Unlock()
			}
		}))
	}()
	return s
}

func (s *sink) reset() { s.mu.Lock(); s.arrivals = map[int]time.Time{}; s.mu.Unlock() }
func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.arrivals)
}
func (s *sink) snapshot() map[int]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]time.Time, len(s.arrivals))
	for k, v := range s.arrivals {
		out[k] = v
	}
	return out
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	once sync.Once
}

func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

func start(bin string, args []string, env []string, ready *regexp.Regexp, logPath string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(logf, pw), io.MultiWriter(logf, pw)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); pw.Close(); logf.Close(); close(p.done) }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[len(m)-1]:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case a, ok := <-found:
		if !ok {
			return nil, fmt.Errorf("%s exited before it was ready; see %s", bin, logPath)
		}
		p.addr = a
		return p, nil
	case <-time.After(90 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s not ready within 90s; see %s", bin, logPath)
	}
}

var listenRe = regexp.MustCompile(`webhook listening: scheme=http addr=(\S+)`)

func startPostee(o options, tmp, name, cfg string, args ...string) (*proc, error) {
	args = append([]string{"--cfgfile", cfg, "--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", o.pluginDir}, args...)
	return start(o.postee, args, []string{"PATH_TO_DB=" + filepath.Join(tmp, name, "webhooks.db")}, listenRe, filepath.Join(tmp, name+".log"))
}

var leaderRe = regexp.MustCompile(`(JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader)`)

func startCluster(o options, tmp string) (string, []*proc, error) {
	var cports, rports, urls, routes []string
	for i := 0; i < 3; i++ {
		cports, rports = append(cports, freePort()), append(rports, freePort())
		urls = append(urls, "nats://127.0.0.1:"+cports[i])
		routes = append(routes, "nats://127.0.0.1:"+rports[i])
	}
	var (
		procs []*proc
		mu    sync.Mutex
		wg    sync.WaitGroup
		errs  []error
	)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			args := []string{"-a", "127.0.0.1", "-p", cports[i], "-js", "-sd", filepath.Join(tmp, "n"+strconv.Itoa(i)),
				"-n", "n" + strconv.Itoa(i+1), "--cluster_name", "bench", "--cluster", routes[i], "--routes", strings.Join(routes, ",")}
			p, err := start(o.natsServer, args, nil, leaderRe, filepath.Join(tmp, "nats"+strconv.Itoa(i)+".log"))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			procs = append(procs, p)
		}(i)
	}
	wg.Wait()
	if len(errs) > 0 {
		return "", procs, errs[0]
	}
	return strings.Join(urls, ","), procs, nil
}

func writeFile(dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		panic(err)
	}
	return p
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func sortD(d []time.Duration) { sort.Slice(d, func(a, b int) bool { return d[a] < d[b] }) }

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(p*float64(len(d))))].Round(10 * time.Microsecond)
}
