package server

// Listeners: the webhook over HTTP and HTTPS, and the management address.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/postee-dev/postee/core/webhook"
)

func (srv *Server) listen(h http.Handler) error {
	s := srv.s
	if s.HTTPAddr != "" {
		ln, err := net.Listen("tcp", s.HTTPAddr)
		if err != nil {
			return fmt.Errorf("webhook: listen on %s: %w", s.HTTPAddr, err)
		}
		hs := webhook.NewServer(s.HTTPAddr, h, s.HeaderTimeout)
		srv.serve(hs, ln, "http")
	}
	if s.TLSCert != "" || s.TLSKey != "" {
		if s.TLSAddr == "" {
			return errors.New("webhook: a TLS certificate is configured but the --tls address is empty")
		}
		cert, err := loadKeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return fmt.Errorf("webhook TLS: %w", err)
		}
		ln, err := net.Listen("tcp", s.TLSAddr)
		if err != nil {
			return fmt.Errorf("webhook: listen on %s: %w", s.TLSAddr, err)
		}
		hs := webhook.NewServer(s.TLSAddr, h, s.HeaderTimeout)
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if s.TLSClientCA != "" {
			pool, err := loadCertPool(s.TLSClientCA)
			if err != nil {
				_ = ln.Close()
				return fmt.Errorf("webhook --tls-client-ca: %w", err)
			}
			// Verified when given; the handler then asks for a verified
			// certificate or the ingest token.
			hs.TLSConfig.ClientCAs = pool
			hs.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
		}
		srv.serve(hs, tls.NewListener(ln, hs.TLSConfig), "https")
	} else if s.TLSClientCA != "" {
		return errors.New("webhook: --tls-client-ca needs the HTTPS listener (--tls-cert and --tls-key)")
	} else if s.TLSAddr != "" {
		srv.log.Info("HTTPS webhook is off: no certificate configured (AQUAALERT_CERT_PEM/AQUAALERT_KEY_PEM or --tls-cert/--tls-key)")
	}
	if len(srv.https) == 0 {
		return errors.New("webhook: neither --url nor a TLS listener is configured")
	}
	return nil
}

// listenAdmin serves the management endpoints on --admin-url, when set.
func (srv *Server) listenAdmin(h http.Handler) error {
	addr := strings.TrimPrefix(srv.s.AdminAddr, "http://")
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("management: listen on %s: %w", addr, err)
	}
	hs := webhook.NewServer(addr, h, srv.s.HeaderTimeout)
	srv.https = append(srv.https, hs)
	srv.addrs = append(srv.addrs, ln.Addr())
	srv.probes.announce(func() { srv.log.Info("management listening", "addr", ln.Addr().String()) })
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.errc <- fmt.Errorf("management: %w", err)
		}
	}()
	return nil
}

// loadCertPool reads a PEM file of CA certificates.
func loadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

func (srv *Server) serve(hs *http.Server, ln net.Listener, scheme string) {
	srv.https = append(srv.https, hs)
	srv.addrs = append(srv.addrs, ln.Addr())
	srv.probes.announce(func() { srv.log.Info("webhook listening", "scheme", scheme, "addr", ln.Addr().String()) })
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.errc <- fmt.Errorf("webhook %s: %w", scheme, err)
		}
	}()
}

// loadKeyPair accepts file paths or inline PEM for cert and key.
func loadKeyPair(cert, key string) (tls.Certificate, error) {
	if cert == "" || key == "" {
		return tls.Certificate{}, errors.New("both a certificate and a key are needed")
	}
	read := func(v string) ([]byte, error) {
		if strings.Contains(v, "-----BEGIN") {
			return []byte(v), nil
		}
		return os.ReadFile(v)
	}
	c, err := read(cert)
	if err != nil {
		return tls.Certificate{}, err
	}
	k, err := read(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c, k)
}

// Addrs are the bound listener addresses (http first).
func (srv *Server) Addrs() []net.Addr { return srv.addrs }
