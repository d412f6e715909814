package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
)

// PermanentError is a connection failure that retrying cannot fix (a TLS
// or credential problem): the runner stops and says why.
type PermanentError struct {
	// Reason says what is wrong and what to change.
	Reason string
	Err    error
}

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *PermanentError) Unwrap() error { return e.Err }

// urlsAreLoopback reports whether every server of a NATS URL list
// ("nats://a:4222,nats://b:4222") is on loopback.
func urlsAreLoopback(list string) bool {
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		parsed, err := url.Parse(u)
		if err != nil || !IsLoopback(parsed.Hostname()) {
			return false
		}
	}
	return true
}

// checkRunnerCertificate checks, before connecting, that the runner's
// certificate names the runner: the controller maps the subject CN to the
// runner's identity, so any other CN is refused there with a less
// helpful message.
func checkRunnerCertificate(name, certFile, keyFile string) error {
	if certFile == "" {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return &PermanentError{Reason: fmt.Sprintf("runner certificate %s / key %s", certFile, keyFile), Err: err}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return &PermanentError{Reason: "runner certificate " + certFile, Err: err}
	}
	if leaf.Subject.CommonName == name && leaf.Subject.String() != "CN="+name {
		return &PermanentError{Reason: fmt.Sprintf("runner certificate %s has the subject %q: the controller maps the whole subject to a runner, "+
			"so it must be exactly CN=%s (postee certs runner %s)", certFile, leaf.Subject.String(), name, name)}
	}
	if leaf.Subject.CommonName != name {
		return &PermanentError{Reason: fmt.Sprintf("runner certificate %s has the subject CN %q, but --runner-name is %q: "+
			"the controller knows a runner by its certificate's CN; issue a certificate with CN=%s (postee certs runner %s)",
			certFile, leaf.Subject.CommonName, name, name, name)}
	}
	return nil
}

// classifyConnectError turns a failed first connection into a
// PermanentError naming the cause, or returns nil for a network failure
// worth retrying (the controller is not up yet, the network is down).
func classifyConnectError(s RunnerSettings, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	msg := err.Error()
	ca := s.CARoot
	if ca == "" {
		ca = "the system's roots (no --runner-ca-root)"
	}
	switch {
	case errors.As(err, &unknownCA):
		return &PermanentError{Reason: fmt.Sprintf("TLS: the controller's certificate is not signed by a CA this runner trusts (%s): "+
			"give the runner the CA that signed the controller's certificate with --runner-ca-root", ca), Err: err}
	case errors.As(err, &hostErr):
		names := hostErr.Certificate.DNSNames
		for _, ip := range hostErr.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		return &PermanentError{Reason: fmt.Sprintf("TLS: the controller's certificate is valid for %v (its SANs), not for %q from --controller-url: "+
			"connect with one of those names, or issue the controller's certificate for this one "+
			"(postee certs controller --hosts %s)", names, hostErr.Host, hostErr.Host), Err: err}
	case errors.As(err, &invalid):
		return &PermanentError{Reason: "TLS: the controller's certificate is not valid (expired, or not for a server)", Err: err}
	case strings.Contains(msg, "certificate required"),
		s.TLSCert == "" && errors.Is(err, nats.ErrTLS) && strings.Contains(msg, "closed by remote after TLS handshake"):
		return &PermanentError{Reason: "TLS: the controller requires a client certificate: give this runner one with " +
			"--runner-tls-cert and --runner-tls-key (its CN is the runner's name)", Err: err}
	case strings.Contains(msg, "remote error: tls:"),
		errors.Is(err, nats.ErrTLS) && strings.Contains(msg, "closed by remote after TLS handshake"):
		return &PermanentError{Reason: "TLS: the controller refused this runner's client certificate (not signed by the " +
			"controller's --controller-ca-root, expired, or not for a client)", Err: err}
	case errors.Is(err, nats.ErrSecureConnWanted):
		return &PermanentError{Reason: fmt.Sprintf("the controller at %s does not offer TLS: without TLS nothing proves the controller "+
			"is the controller and credentials travel in clear text, so a runner connects without TLS only to loopback "+
			"addresses; turn TLS on at the controller (--controller-tls-cert, --controller-tls-key) or pass "+
			"--allow-unauthenticated-runners to this runner", s.URL), Err: err}
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(msg), "authorization violation"),
		errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		how := "this runner presented no credentials"
		switch {
		case s.SeedFile != "":
			how = "its NKey (--runner-seed-file " + s.SeedFile + ") is not the one listed for it under runners: in the controller's config"
		case s.TLSCert != "":
			how = "its certificate's CN is not a runner in the controller's config"
		}
		return &PermanentError{Reason: fmt.Sprintf("authentication failed: the controller does not accept runner %q (%s)", s.Name, how), Err: err}
	case errors.Is(err, nats.ErrNkeysNotSupported):
		return &PermanentError{Reason: "the controller does not use NKeys: drop --runner-seed-file, or list this runner's public key under runners:", Err: err}
	case errors.Is(err, nats.ErrTLS):
		return &PermanentError{Reason: "TLS handshake with the controller failed", Err: err}
	}
	return nil // a network failure: retried
}
