package testdocker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestRequire starts a private daemon, finds the imported image with its
// applets and stops the daemon, removing its directories.
func TestRequire(t *testing.T) {
	d := Require(t)
	if !strings.HasPrefix(d.Host, "unix://") || !strings.HasSuffix(d.Host, "/docker.sock") {
		t.Errorf("Host %q", d.Host)
	}
	if env := d.Env(); env[0] != "DOCKER_HOST="+d.Host {
		t.Errorf("Env %v", env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	img, err := d.Client.ImageInspect(ctx, Image)
	if err != nil {
		t.Fatalf("inspect %s: %v", Image, err)
	}
	if img.Size < 1<<20 {
		t.Errorf("image of %d bytes: busybox missing?", img.Size)
	}
	list, err := d.Client.ImageList(ctx, client.ImageListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("images %+v, %v: want only %s (a private daemon)", list, err, Image)
	}

	dir := d.dir
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after Stop: %v", dir, err)
	}
}
