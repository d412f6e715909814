package routeplugins

import (
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/store"
)

func TestUniqueKey(t *testing.T) {
	v := ast.MustParseTerm(`{"image": "alpine", "vulns": [{"id": "CVE-1"}, {"id": "CVE-2"}], "n": 3}`).Value
	for _, tt := range []struct {
		props []string
		want  string
	}{
		{[]string{"image"}, `["\"alpine\""]`},
		{[]string{"vulns.1.id", "n"}, `["\"CVE-2\"","3"]`},
		{[]string{"missing", "vulns.9.id", "image.x"}, `[null,null,null]`},
	} {
		if got := UniqueKey(v, tt.props); got != tt.want {
			t.Errorf("UniqueKey(%v) = %s, want %s", tt.props, got, tt.want)
		}
	}
}

// plain is a State without SeenFor; byEvent adds it.
type plain struct{ calls []string }

func (p *plain) Seen(route, key string, ttl time.Duration, now time.Time) (bool, error) {
	p.calls = append(p.calls, "Seen "+route+" "+key)
	return false, nil
}
func (p *plain) Aggregate(string, store.Item, int, time.Time) (*store.Batch, error) { return nil, nil }
func (p *plain) Due(map[string]time.Duration, time.Time) ([]*store.Batch, error)    { return nil, nil }

type byEvent struct{ plain }

func (b *byEvent) SeenFor(route, key, eventID string, ttl time.Duration, now time.Time) (bool, error) {
	b.calls = append(b.calls, "SeenFor "+route+" "+key+" "+eventID)
	return true, nil
}

func TestSeenAsksTheEventWhenTheStateKnowsIt(t *testing.T) {
	p, b := &plain{}, &byEvent{}
	if seen, _ := Seen(p, "r", "k", "ev1", time.Hour, time.Now()); seen {
		t.Error("plain: seen")
	}
	if seen, _ := Seen(b, "r", "k", "ev1", time.Hour, time.Now()); !seen {
		t.Error("byEvent: not seen")
	}
	if len(p.calls) != 1 || p.calls[0] != "Seen r k" {
		t.Errorf("plain calls %v", p.calls)
	}
	if len(b.calls) != 1 || b.calls[0] != "SeenFor r k ev1" {
		t.Errorf("byEvent calls %v", b.calls)
	}
}
