package main

import (
	"context"
	"errors"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkevent"
)

const (
	// defaultTimeout bounds one execution (pull, run, output) when
	// `timeout` is not set.
	defaultTimeout = 5 * time.Minute
	// maxEnvLen is Linux's MAX_ARG_STRLEN: the most bytes one NAME=value
	// environment string of the container's process can hold (the
	// terminating NUL included).
	maxEnvLen = 128 << 10
)

// Pull policies of docker-pull.
const (
	pullMissing = "missing"
	pullAlways  = "always"
	pullNever   = "never"
)

// reservedEnv are set by the action for every run; docker-env cannot set
// them.
var reservedEnv = map[string]bool{
	"POSTEE_EVENT":        true,
	"POSTEE_EVENT_ID":     true,
	"POSTEE_ROUTE":        true,
	"POSTEE_ACTION":       true,
	"POSTEE_EXECUTION_ID": true,
	"POSTEE_ATTEMPT":      true,
}

// settings are the keys of a docker action's entry.
type settings struct {
	Image   string                `json:"docker-image-name"`
	Cmd     []string              `json:"docker-cmd"`
	Env     []string              `json:"docker-env"`
	Network string                `json:"docker-network"`
	Mounts  map[string]string     `json:"docker-volume-mounts"`
	Pull    string                `json:"docker-pull"`
	Timeout *sdk.PositiveDuration `json:"timeout"`
}

// dockerAction runs one container per execution. It is immutable after
// Configure, so executions may run concurrently.
type dockerAction struct {
	name    string
	image   string
	cmd     []sdkevent.Template
	env     []string
	network string
	mounts  []mount.Mount
	pull    string
	timeout time.Duration
	// placeholders is whether docker-cmd needs the event.
	placeholders bool
	client       *client.Client
}

var (
	_ sdk.Action = (*dockerAction)(nil)
	_ sdk.Closer = (*dockerAction)(nil)
)

func newAction() sdk.Action { return &dockerAction{} }

// Configure validates the settings and creates the Docker client from the
// environment (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH,
// DOCKER_TLS_VERIFY); it does not contact the daemon.
func (a *dockerAction) Configure(_ context.Context, cfg sdk.Config) error {
	var s settings
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	a.name = cfg.Name
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	a.image = strings.TrimSpace(s.Image)
	if a.image == "" {
		add(sdk.SettingsErrorf("docker-image-name", "is required (e.g. alpine:3.20)"))
	} else if _, err := reference.ParseNormalizedNamed(a.image); err != nil {
		add(sdk.SettingsErrorf("docker-image-name", "%q is not a valid image reference: %v", a.image, err))
	}

	for _, arg := range s.Cmd {
		if strings.ContainsRune(arg, 0) {
			add(sdk.SettingsErrorf("docker-cmd", "an argument contains a NUL byte"))
			continue
		}
		t := sdkevent.Parse(arg)
		a.cmd = append(a.cmd, t)
		a.placeholders = a.placeholders || t.HasPlaceholders()
	}

	for i, kv := range s.Env {
		name, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || name == "":
			// The entry may hold a secret: say which one, not what it is.
			add(sdk.SettingsErrorf("docker-env", "entry %d is not NAME=value", i+1))
		case strings.ContainsRune(kv, 0):
			add(sdk.SettingsErrorf("docker-env", "%s: contains a NUL byte", name))
		case reservedEnv[name]:
			add(sdk.SettingsErrorf("docker-env", "%s is set by postee for every run and cannot be configured", name))
		case len(kv)+1 > maxEnvLen:
			add(sdk.SettingsErrorf("docker-env", "%s: longer than the %d bytes an environment entry may hold", name, maxEnvLen-1))
		default:
			a.env = append(a.env, kv)
		}
	}

	a.network = strings.TrimSpace(s.Network)

	mounts, err := parseMounts(s.Mounts)
	add(err)
	a.mounts = mounts

	switch p := strings.ToLower(strings.TrimSpace(s.Pull)); p {
	case "":
		a.pull = pullMissing
	case pullMissing, pullAlways, pullNever:
		a.pull = p
	default:
		add(sdk.SettingsErrorf("docker-pull", "%q is not one of missing, always, never", s.Pull))
	}

	a.timeout = defaultTimeout
	if s.Timeout != nil {
		a.timeout = s.Timeout.D()
	}

	if err := errors.Join(errs...); err != nil {
		return err
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		return sdk.SettingsErrorf("", "cannot set up the Docker client from the environment (DOCKER_HOST, DOCKER_CERT_PATH, ...): %v", err)
	}
	a.client = c
	return nil
}

// parseMounts turns docker-volume-mounts (host path -> container path, the
// container path optionally ending in ":ro") into bind mounts, sorted by
// container path.
func parseMounts(m map[string]string) ([]mount.Mount, error) {
	const key = "docker-volume-mounts"
	hosts := make([]string, 0, len(m))
	for h := range m {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var errs []error
	var out []mount.Mount
	targets := map[string]string{}
	for _, host := range hosts {
		target, ro := m[host], false
		if t, ok := strings.CutSuffix(target, ":ro"); ok {
			target, ro = t, true
		}
		switch {
		case !path.IsAbs(host):
			errs = append(errs, sdk.SettingsErrorf(key, "host path %q must be absolute", host))
		case !path.IsAbs(target):
			errs = append(errs, sdk.SettingsErrorf(key, "%s: container path %q must be absolute", host, m[host]))
		case path.Clean(target) == "/":
			errs = append(errs, sdk.SettingsErrorf(key, "%s: cannot be mounted on the container's /", host))
		case targets[path.Clean(target)] != "":
			errs = append(errs, sdk.SettingsErrorf(key, "%s and %s are both mounted on %s", targets[path.Clean(target)], host, path.Clean(target)))
		default:
			targets[path.Clean(target)] = host
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: path.Clean(host), Target: path.Clean(target), ReadOnly: ro})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, errors.Join(errs...)
}

// Close releases the client's connections.
func (a *dockerAction) Close() error {
	if a.client != nil {
		return a.client.Close()
	}
	return nil
}
