package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

func sectionJSON(text string) string {
	b, _ := json.Marshal(map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}})
	return string(b)
}

func blocksJSON(n int) string {
	blocks := []string{`{"type":"header","text":{"type":"plain_text","text":"Report"}}`}
	for i := 1; i < n; i++ {
		blocks = append(blocks, sectionJSON(fmt.Sprintf("line %d", i)))
	}
	return "[" + strings.Join(blocks, ",") + "]"
}

// More than 50 blocks go out in several messages of at most 50, in order,
// every block once.
func TestSplitBlocks(t *testing.T) {
	for _, tt := range []struct {
		blocks int
		sizes  []int
	}{
		{50, []int{50}},
		{51, []int{50, 1}},
		{120, []int{50, 50, 20}},
	} {
		t.Run(fmt.Sprint(tt.blocks), func(t *testing.T) {
			f := newFakeSlack(t)
			h := newHarness(t)
			h.MustConfigure("slack", map[string]any{"url": f.url()})
			desc := blocksJSON(tt.blocks)
			out := h.Execute("slack", sdktest.Event(testEvent, sdk.Message{Title: "Report", Description: desc}))
			if !out.OK() {
				t.Fatal(out.Err)
			}
			reqs := f.Requests()
			if len(reqs) != len(tt.sizes) {
				t.Fatalf("%d messages, want %d", len(reqs), len(tt.sizes))
			}
			for i, r := range reqs {
				m := payload(t, r)
				if len(m.Blocks) != tt.sizes[i] {
					t.Errorf("message %d has %d blocks, want %d", i+1, len(m.Blocks), tt.sizes[i])
				}
				wantText := "Report"
				if len(reqs) > 1 {
					wantText = fmt.Sprintf("Report (%d/%d)", i+1, len(reqs))
				}
				if m.Text != wantText {
					t.Errorf("message %d text %q, want %q", i+1, m.Text, wantText)
				}
			}
			var want []map[string]any
			_ = json.Unmarshal([]byte(desc), &want)
			got := allBlocks(t, reqs)
			if b1, b2 := mustJSON(got), mustJSON(want); b1 != b2 {
				t.Errorf("blocks differ:\n got %.300s\nwant %.300s", b1, b2)
			}
			n := fmt.Sprint(len(tt.sizes))
			if out.Details["parts_total"] != n || out.Details["parts_sent"] != n || out.Details["blocks"] != fmt.Sprint(tt.blocks) {
				t.Errorf("details %v", out.Details)
			}
			if len(reqs) > 1 && out.Output != n+" messages sent" {
				t.Errorf("output %q", out.Output)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A section text over 3000 characters becomes several sections, cut at
// line ends; the first keeps the block's other fields, the fields follow
// the last text, ten per section.
func TestSplitLongSection(t *testing.T) {
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf("• <https://nvd.nist.gov/vuln/detail/CVE-2024-%04d|CVE-2024-%04d> *high* `openssl` 3.1.0", i, i))
	}
	text := strings.Join(lines, "\n")
	var fields []map[string]string
	for i := range 23 {
		fields = append(fields, map[string]string{"type": "mrkdwn", "text": fmt.Sprintf("*f%d*", i)})
	}
	block := map[string]any{
		"type": "section", "block_id": "vulns",
		"text":      map[string]any{"type": "mrkdwn", "text": text, "verbatim": true},
		"accessory": map[string]any{"type": "image", "image_url": "https://x/i.png", "alt_text": "logo"},
		"fields":    fields,
	}
	desc := mustJSON([]any{map[string]any{"type": "header", "text": map[string]string{"type": "plain_text", "text": "H"}}, block, map[string]string{"type": "divider"}})

	f := newFakeSlack(t)
	h := newHarness(t)
	h.MustConfigure("slack", map[string]any{"url": f.url()})
	out := h.Execute("slack", sdktest.Event(testEvent, sdk.Message{Title: "H", Description: desc}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	blocks := payload(t, f.Only(t)).Blocks
	if blocks[0]["type"] != "header" || blocks[len(blocks)-1]["type"] != "divider" {
		t.Fatalf("first/last blocks %v %v", blocks[0], blocks[len(blocks)-1])
	}
	secs := blocks[1 : len(blocks)-1]
	var texts []string
	var gotFields []any
	for i, s := range secs {
		if s["type"] != "section" {
			t.Fatalf("block %d: %v", i, s)
		}
		if tx, ok := s["text"].(map[string]any); ok {
			if tx["verbatim"] != true || tx["type"] != "mrkdwn" {
				t.Errorf("section %d text object %v lost its fields", i, tx)
			}
			str := tx["text"].(string)
			if textLen(str) > maxSectionText {
				t.Errorf("section %d has %d characters", i, textLen(str))
			}
			if len(gotFields) > 0 {
				t.Errorf("text after the fields")
			}
			texts = append(texts, str)
		}
		if fs, ok := s["fields"].([]any); ok {
			if len(fs) > maxFields {
				t.Errorf("section %d has %d fields", i, len(fs))
			}
			gotFields = append(gotFields, fs...)
		}
		_, hasID := s["block_id"]
		_, hasAcc := s["accessory"]
		if (i == 0) != hasID || (i == 0) != hasAcc {
			t.Errorf("section %d: block_id %v accessory %v, want them on the first only", i, hasID, hasAcc)
		}
	}
	if len(texts) < 3 || strings.Join(texts, "\n") != text {
		t.Errorf("%d texts that do not join to the original at line ends", len(texts))
	}
	if len(gotFields) != 23 || mustJSON(gotFields) != mustJSON(fields) {
		t.Errorf("fields %s", mustJSON(gotFields))
	}
	if n := len(secs); n != len(texts)+2 {
		t.Errorf("%d sections for %d texts and 23 fields", n, len(texts))
	}
}

// A text message over 40 000 characters is sent in several, cut at line
// ends, the title in the first.
func TestSplitLongText(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 100_000; i++ {
		fmt.Fprintf(&b, "line %d: a < b & c\n", i)
	}
	desc := b.String()
	f := newFakeSlack(t)
	h := newHarness(t)
	h.MustConfigure("slack", map[string]any{"url": f.url()})
	out := h.Execute("slack", sdktest.Event(testEvent, sdk.Message{Title: "Big", Description: desc}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	reqs := f.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d messages, want 4", len(reqs))
	}
	var texts []string
	for _, r := range reqs {
		m := payload(t, r)
		if textLen(m.Text) > maxMessageText || len(m.Blocks) != 0 {
			t.Errorf("a message of %d characters, %d blocks", textLen(m.Text), len(m.Blocks))
		}
		texts = append(texts, m.Text)
	}
	if got, want := strings.Join(texts, "\n"), "*Big*\n"+escape(strings.TrimRight(desc, "\n")); got != want {
		t.Errorf("the messages do not join to the text")
	}
	if out.Details["parts_sent"] != "4" || out.Output != "4 messages sent" {
		t.Errorf("outcome %+v", out)
	}
}

func TestSplitText(t *testing.T) {
	long := func(unit string, n int) string { return strings.Repeat(unit, n) }
	tests := []struct {
		name   string
		in     string
		max    int
		mrkdwn bool
		want   []string
	}{
		{"fits", "abc", 10, false, []string{"abc"}},
		{"at line ends", "aaaa\nbbbb\ncccc", 10, false, []string{"aaaa\nbbbb", "cccc"}},
		{"at spaces", "aaaa bbbb cccc", 10, false, []string{"aaaa bbbb", "cccc"}},
		{"anywhere", long("a", 25), 10, false, []string{long("a", 10), long("a", 10), long("a", 5)}},
		{"space before a link", "xxx <https://a|b>", 14, false, []string{"xxx", "<https://a|b>"}},
		{"not inside a link", "xxxxxx<https://a|b>", 14, false, []string{"xxxxxx", "<https://a|b>"}},
		{"multi-byte", long("ä", 12), 5, false, []string{long("ä", 5), long("ä", 5), "ää"}},
		{"emoji count twice", long("😀", 4), 5, false, []string{"😀😀", "😀😀"}},
		{"code block closed and reopened", "```\n" + long("x\n", 10) + "```", 16, true,
			[]string{"```\nx\nx\nx\nx\n```", "```\nx\nx\nx\nx\n```", "```\nx\nx\n```"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitText(tt.in, tt.max, tt.mrkdwn)
			if mustJSON(got) != mustJSON(tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			for _, p := range got {
				if textLen(p) > tt.max {
					t.Errorf("piece %q is over %d", p, tt.max)
				}
			}
		})
	}
}

// A failure part-way says which part failed; a retry of the execution
// resumes with that part, the earlier ones are not sent again.
func TestPartWayFailureResumes(t *testing.T) {
	f := newFakeSlack(t)
	a := newAction().(*slackAction)
	if err := a.Configure(context.Background(), sdk.Config{Name: "s", Settings: sdk.NewSettings(map[string]any{"url": f.url()})}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	msg := sdk.Message{Title: "Report", Description: blocksJSON(120)} // 3 parts
	ex := func(id string, m sdk.Message, attempt int) (sdk.Result, error) {
		return a.Execute(context.Background(), &sdk.Execution{ID: id, Attempt: attempt, Message: m})
	}

	// Part 2 is rate limited.
	f.setAnswer(func(n int) sdktest.Reply {
		if n == 1 {
			return sdktest.Reply{Status: 429, Body: "rate_limited", Header: map[string]string{"Retry-After": "3"}}
		}
		return sdktest.Reply{}
	})
	res, err := ex("exec-1", msg, 1)
	want := "part 2 of 3: POST " + f.URL + ": status 429 Too Many Requests: rate_limited"
	if err == nil || err.Error() != want || sdk.IsPermanent(err) {
		t.Fatalf("err %v, want retryable %q", err, want)
	}
	if res.Details["parts_sent"] != "1" || res.Details["parts_total"] != "3" || res.Details["retry_after"] != "3" {
		t.Errorf("details %v", res.Details)
	}
	if strings.Contains(err.Error(), "S3cr3t") {
		t.Error("the error reveals the webhook's secret")
	}

	// The retry sends parts 2 and 3 only.
	f.setAnswer(nil)
	res, err = ex("exec-1", msg, 2)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (1, 2 failed, 2, 3)", len(reqs))
	}
	for i, wantFirst := range map[int]string{0: "Report", 1: "line 50", 2: "line 50", 3: "line 100"} {
		b := payload(t, reqs[i]).Blocks[0]
		s := fmt.Sprint(b["text"].(map[string]any)["text"])
		if s != wantFirst {
			t.Errorf("request %d starts with %q, want %q", i+1, s, wantFirst)
		}
	}
	if res.Details["parts_resumed"] != "1" || res.Details["parts_sent"] != "3" ||
		res.Output != "3 messages sent (parts 2-3 now, the ones before by an earlier attempt)" {
		t.Errorf("result %+v", res)
	}
	if a.sent.len() != 0 {
		t.Errorf("%d executions still remembered after success", a.sent.len())
	}

	// A permanent failure of part 3; the retry resumes there, but a
	// message that renders differently, or another execution, starts over.
	f.setAnswer(func(n int) sdktest.Reply {
		if n == 6 {
			return sdktest.Reply{Status: 400, Body: "invalid_blocks"}
		}
		return sdktest.Reply{}
	})
	_, err = ex("exec-2", msg, 1)
	if err == nil || err.Error() != "part 3 of 3: POST "+f.URL+": status 400 Bad Request: invalid_blocks" || !sdk.IsPermanent(err) {
		t.Fatalf("err %v, want a permanent failure of part 3", err)
	}
	before := len(f.Requests())
	if _, err := ex("exec-3", msg, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Requests()) - before; n != 3 {
		t.Errorf("another execution sent %d parts, want 3", n)
	}
	changed := msg
	changed.Title = "Report v2"
	before = len(f.Requests())
	if _, err := ex("exec-2", changed, 2); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Requests()) - before; n != 3 {
		t.Errorf("a changed message sent %d parts, want 3", n)
	}
}

// A failure of the first part remembers nothing; a single-part message
// says no part number.
func TestFirstPartFails(t *testing.T) {
	f := newFakeSlack(t)
	f.setAnswer(func(int) sdktest.Reply { return sdktest.Reply{Status: 500, Body: "oops"} })
	h := newHarness(t)
	h.MustConfigure("slack", map[string]any{"url": f.url()})
	out := h.Execute("slack", sdktest.Event(testEvent, sdk.Message{Title: "R", Description: blocksJSON(60)}))
	if out.OK() || !out.Retryable || !strings.HasPrefix(out.Err, "part 1 of 2: POST http://127.0.0.1:") || out.Details["parts_sent"] != "0" {
		t.Fatalf("outcome %+v", out)
	}
	assertNoSecret(t, out)
}

func TestProgressIsBounded(t *testing.T) {
	p := newProgress(3)
	d := digestOf([][]byte{[]byte("x")})
	for i := range 5 {
		p.set(fmt.Sprint(i), d, i+1)
	}
	if p.len() != 3 || p.get("0", d) != 0 || p.get("1", d) != 0 || p.get("4", d) != 5 {
		t.Errorf("len %d, got %d %d %d", p.len(), p.get("0", d), p.get("1", d), p.get("4", d))
	}
	p.set("4", d, 6) // an update keeps its place
	p.forget("2")
	p.set("5", d, 1)
	if p.len() != 3 || p.get("3", d) != 4 || p.get("4", d) != 6 || p.get("5", d) != 1 {
		t.Errorf("after forget: len %d", p.len())
	}
	p.set("", d, 1)
	if p.get("", d) != 0 || p.len() != 3 {
		t.Error("an empty id is remembered")
	}
}

// A complete message keeps its keys in every part, its attachments in the
// first; its text next to blocks is cut, alone it is split.
func TestCompleteMessageParts(t *testing.T) {
	long := strings.Repeat("word ", 9000) // 45 000 characters
	desc := mustJSON(map[string]any{"text": long, "username": "postee", "attachments": []any{map[string]string{"text": "a"}}})
	parts, err := buildParts(sdk.Message{Title: "T", Description: desc})
	if err != nil || len(parts) != 2 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	var p1, p2 message
	_ = json.Unmarshal(parts[0], &p1)
	_ = json.Unmarshal(parts[1], &p2)
	if p1.Username != "postee" || p2.Username != "postee" || len(p1.Attachments) != 1 || p2.Attachments != nil ||
		p1.Text+" "+p2.Text != long {
		t.Errorf("parts %.100s / %.100s", parts[0], parts[1])
	}

	var blocks []any
	for i := range 60 {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": fmt.Sprint(i)}})
	}
	desc = mustJSON(map[string]any{"text": long, "blocks": blocks})
	parts, err = buildParts(sdk.Message{Title: "T", Description: desc})
	if err != nil || len(parts) != 2 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	for _, part := range parts {
		var p message
		_ = json.Unmarshal(part, &p)
		if textLen(p.Text) != maxMessageText || !strings.HasSuffix(p.Text, "…") {
			t.Errorf("text of %d characters", textLen(p.Text))
		}
	}
}

// JSON that is not Block Kit (an array of other things, a block list with
// a non-object) is text.
func TestNotBlockKit(t *testing.T) {
	for _, desc := range []string{`[1,2]`, `[{"type":"section"}, 3]`, `[{"text":"no type"}]`, `{"a":1},`, `"a string"`} {
		c := parseDescription(desc)
		if !c.plain || c.blocks != nil {
			t.Errorf("%s: %+v", desc, c)
		}
	}
}
