package server

// Management endpoints: the API key, dead letters, reload.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/core/ui"
	"github.com/postee-dev/postee/core/webhook"
)

// handleMux is where the management endpoints are registered: the webhook
// handler, or the mux of --admin-url.
type handleMux interface {
	Handle(pattern string, h http.Handler)
}

// handleAdmin registers the management endpoints on admin, behind the API
// key.
func (srv *Server) handleAdmin(admin handleMux) {
	s, log := srv.s, srv.log
	key := newAPIKey(s.APIKey, log)
	admin.Handle("GET /executions", key.require(srv.history.Handler(), false))
	admin.Handle("GET /events", key.require(srv.events.Handler(), false))
	admin.Handle("GET /metrics", key.require(srv.metrics.Handler(), false))
	admin.Handle("GET /dead-letters", key.require(http.HandlerFunc(srv.listDeadLetters), false))
	admin.Handle("GET /dead-letters/{id}", key.require(http.HandlerFunc(srv.showDeadLetter), false))
	admin.Handle("POST /dead-letters/{id}/replay", key.require(http.HandlerFunc(srv.replayDeadLetter), false))
	reload := key.require(http.HandlerFunc(srv.handleReload), true)
	admin.Handle("GET /reload", reload)
	admin.Handle("POST /reload", reload)
	// The status page checks the API key itself (a login form, then a
	// session cookie): a browser sends no X-API-Key header.
	admin.Handle("/ui/", ui.New(ui.Options{Source: srv.status, APIKey: s.APIKey, Logger: log}))
}

// apiKey guards the management endpoints.
type apiKey struct {
	set    bool
	digest [sha256.Size]byte
	log    hclog.Logger
}

func newAPIKey(key string, log hclog.Logger) *apiKey {
	return &apiKey{set: key != "", digest: sha256.Sum256([]byte(key)), log: log}
}

// require guards h with the API key, sent in a header: X-API-Key or
// Authorization: Bearer <key>, compared as digests in constant time (no
// length leak). With query, the existing Postee's /reload?key= is accepted
// too, with a warning: a key in a URL ends up in logs and histories.
func (k *apiKey) require(h http.Handler, query bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !k.set {
			http.Error(w, "this endpoint needs an API key: set POSTEE_API_KEY (or --api-key)", http.StatusForbidden)
			return
		}
		got := r.Header.Get("X-API-Key")
		if got == "" {
			if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
				got = strings.TrimSpace(a[7:])
			}
		}
		if got == "" && query && r.URL.Query().Has("key") {
			got = r.URL.Query().Get("key")
			k.log.Warn("API key in the URL (?key=) is deprecated: send it in the X-API-Key or Authorization: Bearer header", "path", r.URL.Path)
		}
		if !webhook.TokenEqual(got, k.digest) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// listDeadLetters serves a page of the dead letters, oldest first:
// ?offset=&limit= (default 100, at most 1000).
func (srv *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	offset = max(offset, 0)
	ds, total, err := srv.store.DeadLettersPage(offset, limit)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if ds == nil {
		ds = []store.DeadLetter{}
	}
	page := map[string]any{"dead_letters": ds, "total": total, "dropped": srv.store.DeadLettersDropped()}
	if offset+len(ds) < total {
		page["next_offset"] = offset + len(ds)
	}
	writeJSON(w, http.StatusOK, page)
}

func (srv *Server) showDeadLetter(w http.ResponseWriter, r *http.Request) {
	d, err := srv.store.GetDeadLetter(r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

// replayDeadLetter runs a dead letter once more: 200 with the execution
// when it succeeded (the dead letter is gone), 502 when it failed again.
func (srv *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	d, err := srv.store.GetDeadLetter(r.PathValue("id"))
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, store.ErrNotFound) {
			code = http.StatusNotFound
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	x, err := srv.engine.Replay(r.Context(), d)
	switch {
	case err != nil:
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case x.Err != "":
		writeJSON(w, http.StatusBadGateway, x)
	default:
		srv.log.Info("dead letter replayed", "execution", x.ID, "action", x.Action)
		writeJSON(w, http.StatusOK, x)
	}
}

func (srv *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if err := srv.Reload(r.Context()); err != nil {
		srv.log.Error("reload refused; the running configuration is kept", "error", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "configuration not reloaded, the running one is kept:\n%v\n", err)
		return
	}
	srv.log.Info("configuration reloaded", "file", srv.s.CfgFile)
	fmt.Fprintln(w, "configuration reloaded")
}

// Reload re-reads the config file and swaps it in when it is valid
// (standalone and controller; runners follow their controller).
func (srv *Server) Reload(ctx context.Context) error {
	if srv.runner != nil {
		return errors.New("a runner's configuration comes from its controller")
	}
	srv.reloadMu.Lock()
	defer srv.reloadMu.Unlock()
	cfg, err := config.LoadFile(srv.s.CfgFile)
	if err != nil {
		return err
	}
	if err := srv.engine.Load(ctx, cfg); err != nil {
		return err
	}
	if srv.controller != nil {
		return srv.controller.SetConfig(ctx, cfg)
	}
	return nil
}
