package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// relay is the baseline postee is measured against: a bare Go HTTP server
// that decodes each JSON event, re-encodes it (indented, as
// postee.rawmessage.json renders it, so that the sink gets the same bytes)
// and forwards it to the sink with one pooled client before answering. It
// keeps nothing on disk: its 2xx means "delivered", postee's means "on disk".
type relay struct {
	ln     net.Listener
	srv    *http.Server
	client *http.Client
	to     string
}

func startRelay(sinkURL string, conns int) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	r := &relay{ln: ln, to: sinkURL, client: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is where the senders POST.
func (r *relay) URL() string { return "http://" + r.ln.Addr().String() + "/" }

func (r *relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 10<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev any
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	out, err := json.MarshalIndent(ev, "", "    ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fwd, err := http.NewRequestWithContext(req.Context(), http.MethodPost, r.to, bytes.NewReader(out))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fwd.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(fwd)
	if err != nil {
		http.Error(w, "forward: "+err.Error(), http.StatusBadGateway)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		http.Error(w, "sink answered "+resp.Status, http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"accepted"}`)
}

func (r *relay) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = r.srv.Close()
	}
	r.client.CloseIdleConnections()
}

// relayProcess is the relay run as its own process (loadgen -serve-relay,
// with -relay-process), as a relay in production would be and as postee
// is: inside loadgen, the relay's goroutines share one scheduler with the
// senders and the sink (a request and its answer wake no other process),
// and its garbage collection is paced by loadgen's larger heap.
type relayProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan struct{}
}

// relayListening is the line the relay process prints once it listens.
const relayListening = "relay listening on "

// startRelayProcess starts loadgen itself with -serve-relay and waits for
// its address. The child exits when its standard input closes (close), so
// it never outlives loadgen.
func startRelayProcess(sinkURL string, conns, gogc int) (*relayProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("relay process: %w", err)
	}
	cmd := exec.Command(self, "-serve-relay", sinkURL, "-senders", strconv.Itoa(conns/2))
	cmd.Stderr = os.Stderr
	if gogc > 0 {
		cmd.Env = append(os.Environ(), "GOGC="+strconv.Itoa(gogc))
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("relay process: %w", err)
	}
	p := &relayProcess{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), relayListening); ok {
				addrc <- a
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case p.addr = <-addrc:
		return p, nil
	case <-p.done:
		return nil, errors.New("relay process exited before listening")
	case <-t.C:
		p.close()
		return nil, errors.New("relay process did not listen in time")
	}
}

// URL is where the senders POST.
func (p *relayProcess) URL() string { return "http://" + p.addr + "/" }

// pid is the relay process's.
func (p *relayProcess) pid() int { return p.cmd.Process.Pid }

// close ends the relay process: its standard input closes, then, if it is
// still there after stopGrace, it is killed.
func (p *relayProcess) close() {
	_ = p.stdin.Close()
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// serveRelay is loadgen -serve-relay: the relay, forwarding to sinkURL,
// until standard input closes or a signal ends ctx.
func serveRelay(ctx context.Context, sinkURL string, conns int, stdin io.Reader, stdout io.Writer) error {
	rl, err := startRelay(sinkURL, conns)
	if err != nil {
		return err
	}
	defer rl.close()
	fmt.Fprintf(stdout, "%s%s\n", relayListening, rl.ln.Addr())
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}
