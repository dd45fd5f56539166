package problem

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestCodesDocumented keeps docs/problem-codes.md and the catalogue in step:
// every code is documented with its status, and nothing undocumented or
// stale is listed.
func TestCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/problem-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `([a-z0-9_.]+)` \\| (\\d{3}) \\|").FindAllStringSubmatch(string(doc), -1)
	documented := map[string]int{}
	for _, r := range rows {
		documented[r[1]], _ = strconv.Atoi(r[2])
	}
	for code, e := range Catalogue {
		st, ok := documented[code]
		if !ok {
			t.Errorf("code %q is not documented in docs/problem-codes.md", code)
		} else if st != e.Status {
			t.Errorf("code %q: documented status %d, catalogue %d", code, st, e.Status)
		}
	}
	for code := range documented {
		if _, ok := Catalogue[code]; !ok {
			t.Errorf("docs/problem-codes.md lists %q, which the catalogue does not have", code)
		}
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Length", "999")
	e := Wrap(CodeUpstreamTLSPinMismatch, "The upstream's key is not the pinned one.", os.ErrNotExist)
	Write(rec, e, "abc123")
	if rec.Code != 502 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length %q for a %d-byte body", rec.Header().Get("Content-Length"), rec.Body.Len())
	}
	var d Document
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	want := Document{Type: TypeBase + CodeUpstreamTLSPinMismatch, Title: Catalogue[CodeUpstreamTLSPinMismatch].Title, Status: 502,
		Code: CodeUpstreamTLSPinMismatch, Detail: "The upstream's key is not the pinned one.", RequestID: "abc123"}
	if d != want {
		t.Errorf("document = %+v\nwant %+v", d, want)
	}
	if regexp.MustCompile("not exist").Match(rec.Body.Bytes()) {
		t.Error("the cause leaked into the client's document")
	}
}
