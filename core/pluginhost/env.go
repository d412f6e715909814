package pluginhost

import (
	"sort"
	"strings"
)

// A plugin process does not inherit postee's environment. It gets:
//   - the variables of baseEnv (and those starting with a prefix of
//     basePrefixes) that are set: what any program needs to find commands,
//     write temporary files, format dates, reach a proxy and trust a CA;
//   - the variables its actions name as $NAME or ${NAME} anywhere in their
//     settings (Spec.Env), so that an exec script or an env entry that
//     refers to a variable still finds it;
//   - the variables its type reads by design (typeEnv);
// and never postee's own variables (denied), whatever an action names.

// baseEnv are the variables every plugin gets when they are set.
var baseEnv = []string{
	"PATH", "HOME", "TMPDIR", "TZ", "LANG",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
}

// basePrefixes start variables every plugin gets (locale categories).
var basePrefixes = []string{"LC_"}

// typeEnv are the variables a plugin type reads from its own environment by
// design: a name ending in "*" is a prefix.
var typeEnv = map[string][]string{
	// password falls back to JIRA_PASSWORD, as in the original postee.
	"jira": {"JIRA_PASSWORD"},
	// The in-cluster configuration when kube-config-file is not set.
	"kubernetes": {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"},
	// The Docker client's standard variables.
	"docker": {"DOCKER_HOST", "DOCKER_API_VERSION", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"},
	// The AWS SDK's credential chain (keys, profile, region, web identity).
	"awssecurityhub": {"AWS_*"},
}

// deniedPrefixes and deniedNames are postee's own variables (its
// configuration, API key, TLS key paths) and go-plugin's: never given to a
// plugin, even when an action names them (a secret setting that names one
// is expanded by postee, so the plugin gets the value it needs).
var (
	deniedPrefixes = []string{"POSTEE_", "AQUAALERT_", "PLUGIN_"}
	deniedNames    = map[string]bool{"PATH_TO_DB": true, "REGO_FILTERS_PATH": true}
)

func denied(name string) bool {
	if deniedNames[name] {
		return true
	}
	for _, p := range deniedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// allowed reports whether a plugin of type typ that refers to refs may see
// the variable name.
func allowed(typ string, refs map[string]bool, name string) bool {
	if denied(name) {
		return false
	}
	if refs[name] {
		return true
	}
	for _, n := range baseEnv {
		if n == name {
			return true
		}
	}
	for _, p := range basePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, n := range typeEnv[typ] {
		if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) || n == name {
			return true
		}
	}
	return false
}

// pluginEnv filters environ (NAME=value entries) down to what a plugin of
// type typ whose actions refer to refs may see.
func pluginEnv(typ string, refs map[string]bool, environ []string) []string {
	out := make([]string, 0, len(baseEnv))
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if ok && allowed(typ, refs, name) {
			out = append(out, kv)
		}
	}
	return out
}

// envKey is a stable key of a set of names, to tell whether a running
// process was started with the same variables.
func envKey(refs map[string]bool) string {
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
