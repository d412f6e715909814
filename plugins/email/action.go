package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
)

const (
	// defaultPort is the submission port (STARTTLS when offered).
	defaultPort = 587
	// defaultMXPort is the port MX servers accept mail on.
	defaultMXPort = 25
	// implicitTLSPort is the port on which TLS starts before SMTP (RFC 8314).
	implicitTLSPort = 465
	// maxOutput bounds the result's output.
	maxOutput = 4 << 10
)

// settings are the keys of an email action's entry.
type settings struct {
	sdkhttp.Common
	Host           string   `json:"host"`
	Port           *int     `json:"port"`
	User           string   `json:"user"`
	Password       string   `json:"password"`
	Sender         string   `json:"sender"`
	Recipients     []string `json:"recipients"`
	ClientHostName string   `json:"client-host-name"`
	UseMX          bool     `json:"use-mx"`
}

// lookupMXFunc looks up the MX records of a domain, as net.Resolver does.
type lookupMXFunc func(ctx context.Context, domain string) ([]*net.MX, error)

// emailAction sends one message per execution. Its configuration is
// immutable after Configure; the record of recipients already delivered
// (sent) guards itself, so executions may run concurrently.
type emailAction struct {
	host       string
	port       int
	user       string
	password   string
	sender     *mail.Address
	recipients []string // as configured, placeholder included
	helo       string   // EHLO name; "" = this machine's host name
	useMX      bool
	verify     bool
	timeout    time.Duration

	// implicitTLS is whether TLS starts before SMTP (port 465).
	implicitTLS bool

	// lookupMX resolves MX records (use-mx); tests replace it.
	lookupMX lookupMXFunc
	// tlsPort is the port with implicit TLS, 0 for 465; tests, whose
	// servers listen on ephemeral ports, set it.
	tlsPort int

	// sent remembers, per execution, which recipients were delivered, so
	// that a retry does not send to them again.
	sent *sentLog
}

var _ sdk.Action = (*emailAction)(nil)

func newAction() sdk.Action { return &emailAction{} }

// Configure validates the settings; it does no I/O.
func (a *emailAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	a.useMX = s.UseMX
	a.host = strings.TrimSpace(s.Host)
	switch {
	case a.useMX && a.host != "":
		sdk.Logger().Warn("email: host is not used with use-mx: true; mail goes to each recipient domain's MX", "action", cfg.Name)
		a.host = ""
	case !a.useMX && a.host == "":
		add(sdk.SettingsErrorf("host", "is required (the SMTP server, e.g. smtp.example.com), unless use-mx is true"))
	case !a.useMX:
		add(checkHost(a.host))
		a.host = strings.TrimSuffix(strings.TrimPrefix(a.host, "["), "]")
	}

	a.port = defaultPort
	if a.useMX {
		a.port = defaultMXPort
	}
	if s.Port != nil && *s.Port != 0 {
		if *s.Port < 0 || *s.Port > 65535 {
			add(sdk.SettingsErrorf("port", "must be between 1 and 65535, not %d", *s.Port))
		}
		a.port = *s.Port
	}

	a.user, a.password = s.User, s.Password
	if a.useMX && (a.user != "" || a.password != "") {
		sdk.Logger().Warn("email: user and password are not used with use-mx: true (MX servers take no login)", "action", cfg.Name)
		a.user, a.password = "", ""
	}
	switch {
	case a.user != "" && a.password == "":
		add(sdk.SettingsErrorf("password", "is empty while user is set (if it names an environment variable, is that variable set?)"))
	case a.user == "" && a.password != "":
		add(sdk.SettingsErrorf("user", "is empty while password is set (if it names an environment variable, is that variable set?)"))
	}

	switch sender := strings.TrimSpace(s.Sender); {
	case sender != "":
		addr, err := mail.ParseAddress(sender)
		if err != nil {
			add(sdk.SettingsErrorf("sender", "%q is not an email address: %v", sender, err))
		}
		a.sender = addr
	case s.User != "":
		// As in the original postee, the sender defaults to the user.
		addr, err := mail.ParseAddress(strings.TrimSpace(s.User))
		if err != nil {
			add(sdk.SettingsErrorf("sender", "is not set and user is not an email address; set sender"))
		}
		a.sender = addr
	default:
		add(sdk.SettingsErrorf("sender", "is required (the From address, e.g. postee@example.com)"))
	}

	a.recipients = nil
	if len(s.Recipients) == 0 {
		add(sdk.SettingsErrorf("recipients", "at least one recipient is required"))
	}
	for i, r := range s.Recipients {
		r = strings.TrimSpace(r)
		if r == sdk.OwnerPlaceholder {
			a.recipients = append(a.recipients, r)
			continue
		}
		if _, err := mail.ParseAddress(r); err != nil {
			add(sdk.SettingsErrorf("recipients", "entry %d, %q, is not an email address (or %s): %v", i+1, r, sdk.OwnerPlaceholder, err))
			continue
		}
		a.recipients = append(a.recipients, r)
	}

	a.helo = strings.TrimSpace(s.ClientHostName)
	if a.helo != "" && !validHELO(a.helo) {
		add(sdk.SettingsErrorf("client-host-name", "%q is not a host name or address literal", a.helo))
	}

	tlsPort := implicitTLSPort
	if a.tlsPort != 0 {
		tlsPort = a.tlsPort
	}
	a.implicitTLS = a.port == tlsPort
	a.verify = s.Verify()
	a.timeout = s.TimeoutOr(sdkhttp.DefaultTimeout)

	if err := errors.Join(errs...); err != nil {
		return err
	}
	if a.lookupMX == nil {
		a.lookupMX = net.DefaultResolver.LookupMX
	}
	a.sent = newSentLog()
	return nil
}

// checkHost refuses a host with a port or a scheme in it.
func checkHost(h string) error {
	if strings.Contains(h, "://") {
		return sdk.SettingsErrorf("host", "%q: give the host name only, without a scheme", h)
	}
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
		return nil
	}
	if _, port, err := net.SplitHostPort(h); err == nil {
		return sdk.SettingsErrorf("host", "%q: give the port in the port setting, not in host (port: %s)", h, port)
	}
	if !validHostName(h) {
		return sdk.SettingsErrorf("host", "%q is not a host name", h)
	}
	return nil
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' {
			continue
		}
		return false
	}
	return true
}

// validHELO accepts a host name or an address literal ([192.0.2.1],
// [IPv6:2001:db8::1]).
func validHELO(h string) bool {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		lit := strings.TrimPrefix(strings.TrimSuffix(h[1:], "]"), "IPv6:")
		return net.ParseIP(lit) != nil
	}
	return validHostName(h)
}

// Execute sends the message to every recipient not yet delivered by an
// earlier attempt of the same execution.
func (a *emailAction) Execute(ctx context.Context, ex *sdk.Execution) (sdk.Result, error) {
	rcpts, bad := a.expandRecipients(ex.Event)
	if len(rcpts) == 0 && len(bad) == 0 {
		return sdk.Result{}, sdk.Permanentf("no recipients: %s expanded to nobody (the event has no application_scope_owners) and no other recipient is configured", sdk.OwnerPlaceholder)
	}
	msg := newMessage(ex, a.sender, a.helo)

	entry := a.sent.acquire(ex.ID)
	var pending []*mail.Address
	for _, r := range rcpts {
		if _, done := entry.results[r.Address]; !done {
			pending = append(pending, r)
		}
	}
	var results map[string]outcome
	var info connInfo
	if len(pending) > 0 {
		if a.useMX {
			results = a.deliverMX(ctx, msg, pending)
		} else {
			results, info = a.deliverRelay(ctx, msg, rcpts, pending)
		}
	}
	// Recipients that have the message, or refused it for good, are not
	// sent to again by a retry of this execution.
	for addr, o := range results {
		if o.delivered || !o.temporary {
			entry.results[addr] = o
		}
	}
	res, err := a.result(msg, rcpts, bad, entry, results, info)
	a.sent.release(ex.ID, entry, err == nil || sdk.IsPermanent(err))
	for _, r := range rcpts {
		if o, ok := results[r.Address]; ok && !o.delivered {
			sdk.Logger().Warn("email: not delivered", "action", ex.Action, "execution", ex.ID, "recipient", r.Address, "reason", a.redact(o.reason), "temporary", o.temporary)
		}
	}
	return res, err
}

// expandRecipients returns the recipients of one event, the
// application scope owners expanded, and the owner entries that are not
// email addresses.
func (a *emailAction) expandRecipients(event []byte) ([]*mail.Address, []string) {
	var out []*mail.Address
	var bad []string
	seen := map[string]bool{}
	for _, r := range sdk.ExpandOwners(a.recipients, event) {
		addr, err := mail.ParseAddress(r)
		if err != nil {
			bad = append(bad, r)
			continue
		}
		key := strings.ToLower(addr.Address)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, addr)
	}
	return out, bad
}

// result summarises the delivery to each recipient: the error is nil when
// every recipient has the message, retryable when a recipient failed
// temporarily, permanent otherwise.
func (a *emailAction) result(msg *message, rcpts []*mail.Address, bad []string, entry *sentEntry, now map[string]outcome, info connInfo) (sdk.Result, error) {
	var lines, delivered, failed []string
	var reasons []string              // distinct failure reasons, in order
	byReason := map[string][]string{} // reason -> recipients
	temporary := false
	for _, r := range rcpts {
		o, fresh := now[r.Address]
		if !fresh {
			o = entry.results[r.Address]
		}
		line := r.Address + ": "
		switch {
		case o.delivered && fresh:
			line += "delivered"
			delivered = append(delivered, r.Address)
		case o.delivered:
			line += "delivered by an earlier attempt"
			delivered = append(delivered, r.Address)
		case !fresh:
			line += "refused by an earlier attempt"
			failed = append(failed, r.Address)
		default:
			line += "not delivered"
			failed = append(failed, r.Address)
			temporary = temporary || o.temporary
		}
		switch {
		case o.reason == "":
		case o.delivered:
			line += " (" + o.reason + ")"
		default:
			line += ": " + o.reason
		}
		lines = append(lines, line)
		if !o.delivered {
			if _, seen := byReason[o.reason]; !seen {
				reasons = append(reasons, o.reason)
			}
			byReason[o.reason] = append(byReason[o.reason], r.Address)
		}
	}
	for _, b := range bad {
		q := strconv.Quote(b)
		lines = append(lines, q+": not delivered: not an email address (from application_scope_owners)")
		failed = append(failed, q)
		const reason = "not an email address"
		if _, seen := byReason[reason]; !seen {
			reasons = append(reasons, reason)
		}
		byReason[reason] = append(byReason[reason], q)
	}
	var failures []string
	for _, reason := range reasons {
		failures = append(failures, strings.Join(byReason[reason], ", ")+": "+reason)
	}

	res := sdk.Result{
		Output: truncate(a.redact(strings.Join(lines, "\n")), maxOutput),
		Details: map[string]string{
			"message_id": msg.id,
			"recipients": strconv.Itoa(len(rcpts) + len(bad)),
			"delivered":  strconv.Itoa(len(delivered)),
			"failed":     strconv.Itoa(len(failed)),
		},
	}
	if len(delivered) > 0 {
		res.Details["delivered_to"] = truncate(strings.Join(delivered, ","), 1024)
	}
	if len(failed) > 0 {
		res.Details["failed_for"] = truncate(strings.Join(failed, ","), 1024)
	}
	if info.server != "" {
		res.Details["server"] = info.server
		res.Details["tls"] = info.tls
	}
	if len(failed) == 0 {
		return res, nil
	}
	err := fmt.Errorf("%d of %d recipients not delivered: %s", len(failed), len(rcpts)+len(bad), truncate(strings.Join(failures, "; "), 1024))
	err = errors.New(a.redact(err.Error()))
	if temporary {
		return res, err
	}
	return res, sdk.Permanent(err)
}

// redact removes the password from a text, should a server ever echo it.
func (a *emailAction) redact(s string) string {
	if len(a.password) >= 4 {
		s = strings.ReplaceAll(s, a.password, "[redacted]")
	}
	return s
}

// truncate bounds s to n bytes, cutting at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}
