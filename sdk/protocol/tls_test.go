package protocol

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
)

// handshake runs a TLS handshake between client and server over a pipe.
func handshake(t *testing.T, client, server *tls.Config) error {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- tls.Server(s, server).Handshake(); s.Close() }()
	err := tls.Client(c, client).Handshake()
	c.Close()
	if serr := <-done; err == nil {
		err = serr
	}
	return err
}

func TestTransportTLS(t *testing.T) {
	host, err := NewHostIdentity()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewHostIdentity()
	if err != nil {
		t.Fatal(err)
	}
	transport := func(h *HostIdentity) (*Transport, *tls.Config) {
		tr, err := h.TransportFor()
		if err != nil {
			t.Fatal(err)
		}
		defer tr.File.Close()
		var clientPEM string
		for _, kv := range tr.Env {
			if v, ok := strings.CutPrefix(kv, EnvClientCert+"="); ok {
				clientPEM = v
			}
		}
		server, err := serverTLSFrom(tr.File, clientPEM)
		if err != nil {
			t.Fatal(err)
		}
		return tr, server
	}
	tr, server := transport(host)
	if err := handshake(t, tr.Client, server); err != nil {
		t.Fatalf("the host and its plugin: %v", err)
	}
	// Another host cannot call the plugin...
	otherTr, otherServer := transport(other)
	if err := handshake(t, otherTr.Client, server); err == nil {
		t.Fatal("a client with another host's certificate was accepted")
	}
	// ...and the host talks only to the plugin it started.
	if err := handshake(t, tr.Client, otherServer); err == nil {
		t.Fatal("the host accepted another plugin's certificate")
	}
	// Nothing secret in the environment.
	for _, kv := range tr.Env {
		if strings.Contains(kv, "PRIVATE KEY") {
			t.Fatalf("a key in the plugin's environment: %.40s…", kv)
		}
	}
}

func TestServerTLSWithoutHost(t *testing.T) {
	t.Setenv(EnvTLSFD, "")
	if cfg, err := ServerTLS(); cfg != nil || err != nil {
		t.Fatalf("ServerTLS() without the host's variables = %v, %v; want nil, nil (go-plugin's own mTLS)", cfg, err)
	}
	t.Setenv(EnvTLSFD, "7")
	if _, err := ServerTLS(); err == nil {
		t.Fatal("ServerTLS accepted a descriptor other than 3")
	}
}
