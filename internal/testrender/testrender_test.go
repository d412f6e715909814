package testrender

import (
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
)

func TestRender(t *testing.T) {
	raw := testevents.AquaScan("registry.example.com/team/web:1.4.2", 3)
	plain := Package(t, "postee.vuls.html", raw)
	if !strings.Contains(plain.Title, "team/web:1.4.2") || plain.Description == "" {
		t.Fatalf("message %+v", plain)
	}
	if strings.Contains(plain.Description, AquaServer) {
		t.Errorf("without an aqua-server the message links to %s", AquaServer)
	}
	// The aqua-server reaches the template as postee passes it.
	linked := Render(t, template.Spec{RegoPackage: "postee.vuls.html"}, raw, AquaServer)
	if !strings.Contains(linked.Description+linked.URL, AquaServer+"/#/images/") {
		t.Errorf("with aqua-server %s the message has no link to it: %.300s / url %q", AquaServer, linked.Description, linked.URL)
	}
	r := Compile(t, template.Spec{RegoPackage: "postee.vuls.html"})
	if again := With(t, r, raw, ""); again != plain {
		t.Errorf("With differs from Package")
	}
}
