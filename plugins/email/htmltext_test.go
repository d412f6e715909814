package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"paragraphs", "<p>One</p><p>Two  words\n here</p>", "One\n\nTwo words here\n"},
		{"line breaks", "a<br>b<br/><br>c", "a\nb\n\nc\n"},
		{"entities", "<p>&lt;tag&gt; &amp; &quot;q&quot; caf&eacute; &#x2713;</p>", "<tag> & \"q\" café ✓\n"},
		{"inline tags keep spaces", "<p>Hello <b>big</b> <i>world</i>!</p>", "Hello big world!\n"},
		{"no space inside a word", "<p>CVE-<b>2024</b>-1</p>", "CVE-2024-1\n"},
		{"link with text", `<p>See <a href="https://avd.example.test/CVE-1">CVE-1</a> now</p>`, "See CVE-1 (https://avd.example.test/CVE-1) now\n"},
		{"link showing its address", `<a href="https://x.test/a">https://x.test/a</a>`, "https://x.test/a\n"},
		{"mailto link", `<a href="mailto:sec@x.test">security</a>`, "security (sec@x.test)\n"},
		{"empty link", `<a href="https://x.test/"></a>`, "https://x.test/\n"},
		{"anchor and script links dropped", `<a href="#top">top</a> <a href="javascript:alert(1)">x</a>`, "top x\n"},
		{"lists", "<ul><li>a</li><li>b <ul><li>c</li></ul></li></ul><ol><li>one</li><li>two</li></ol>", "- a\n- b\n  - c\n\n1. one\n2. two\n"},
		{"table", "<table><tr><th>ID</th><th>Package</th></tr><tr><td>CVE-1</td><td> openssl </td></tr></table>", "ID | Package\nCVE-1 | openssl\n"},
		{"headings", "<h1>Title</h1>text<h3>Sub</h3>more", "Title\n\ntext\n\nSub\n\nmore\n"},
		{"pre keeps layout", "<pre>a   b\n  c</pre>after", "a   b\n  c\n\nafter\n"},
		{"skipped elements", "<html><head><title>T</title><style>p{color:red}</style></head><body><script>x()</script><p>body</p></body></html>", "body\n"},
		{"image alt", `<p>logo <img src="x.png" alt="Aqua"> end</p>`, "logo [Aqua] end\n"},
		{"hr", "a<hr>b", "a\n" + strings.Repeat("-", 40) + "\nb\n"},
		{"divs", "<div>a</div><div><div>b</div></div>", "a\nb\n"},
		{"unclosed tags", "<p>a<p>b<li>c", "a\n\nb\n- c\n"},
		{"stray close tags", "</a></ul></tr></pre>text", "text\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := htmlToText(tt.in); got != tt.want {
				t.Errorf("htmlToText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLooksLikeHTML(t *testing.T) {
	for in, want := range map[string]bool{
		"<p>x</p>":                      true,
		"a<br>b":                        true,
		"<table><tr><td>1</td></tr>":    true,
		"plain text":                    false,
		"version <none> of pkg":         false,
		"a < b and c > d":               false,
		"*bold* and <https://x.test|x>": false,
	} {
		if got := looksLikeHTML(in); got != want {
			t.Errorf("looksLikeHTML(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestRenderedTemplateText keeps the text derived from the bundled
// postee.vuls.html template readable; testdata/vuls.txt is the golden copy
// (regenerate with UPDATE_GOLDEN=1).
func TestRenderedTemplateText(t *testing.T) {
	msg, _ := renderVuls(t)
	htmlBody, text := bodies(msg.Description, msg.URL, msg.Title)
	if !strings.Contains(htmlBody, msg.Description) {
		t.Fatal("HTML part lost the description")
	}
	golden := filepath.Join("testdata", "vuls.txt")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if text != string(want) {
		t.Errorf("text part differs from %s:\n%s", golden, text)
	}
	if strings.Contains(text, "<") && strings.Contains(text, "</") {
		t.Errorf("text part has tags:\n%s", text)
	}
}
