package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// The HTTP/1.1 client's own request writer and response parser must agree
// byte for byte and field for field with net/http's, which they stand in
// for on the common message. These tests compare them on many messages.

func TestWriteRequestHeadMatchesNetHTTP(t *testing.T) {
	mk := func(method, rawURL string, h http.Header) *http.Request {
		u, err := url.Parse(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			h = http.Header{}
		}
		return &http.Request{Method: method, URL: u, Header: h}
	}
	cases := []struct {
		name string
		req  *http.Request
		fast bool // whether the fast writer takes it
	}{
		{"bare GET gets Go's User-Agent", mk("GET", "https://api.internal/", nil), true},
		{"empty method is GET", mk("", "https://api.internal/x", nil), true},
		{"empty User-Agent sends none", mk("GET", "https://api.internal/x", http.Header{"User-Agent": {""}}), true},
		{"User-Agent trimmed, first value only", mk("GET", "https://api.internal/x", http.Header{"User-Agent": {" \tcurl/8 ", "second"}}), true},
		{"headers sorted, values trimmed, repeated in order", mk("GET", "https://api.internal:8443/a/b?x=1&y=2", http.Header{
			"X-Forwarded-For": {"10.0.0.1"}, "Accept": {"*/*"}, "X-Multi": {"a", " b ", "\tc\t"},
			"x-lower": {"kept as is"}, "Authorization": {"Bearer t"}, "User-Agent": {""},
		}), true},
		{"framing headers in the map are not sent", mk("GET", "https://api.internal/", http.Header{
			"Host": {"evil"}, "Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}, "X-Ok": {"1"},
		}), true},

		{"POST without a body says Content-Length: 0", mk("POST", "https://api.internal/p", nil), true},
		{"PUT without a body", mk("PUT", "https://api.internal/p", nil), true},
		{"PATCH without a body", mk("PATCH", "https://api.internal/p", nil), true},
		{"DELETE without a body says nothing", mk("DELETE", "https://api.internal/p", nil), true},
		{"OPTIONS", mk("OPTIONS", "https://api.internal/p", nil), true},
		{"force query", mk("GET", "https://api.internal/p?", nil), true},
		{"path escaped", mk("GET", "https://api.internal/a%20b/c", nil), true},
		{"raw path kept", mk("GET", "https://api.internal/a%2Fb", nil), true},
		{"IPv6 host", mk("GET", "https://[::1]:8443/", nil), true},
		{"plain http with port", mk("GET", "http://127.0.0.1:18080/v1/x?q=%C3%A9", nil), true},
		{"CONNECT", mk("CONNECT", "https://api.internal/", nil), false},
		{"host with zone", mk("GET", "https://[fe80::1%25eth0]:8443/", nil), false},
		{"non-ASCII host", mk("GET", "https://bücher.example/", nil), false},
	}
	body := mk("POST", "https://api.internal/", nil)
	body.Body = io.NopCloser(strings.NewReader("x"))
	body.ContentLength = 1
	cases = append(cases, struct {
		name string
		req  *http.Request
		fast bool
	}{"a body", body, false})
	closeReq := mk("GET", "https://api.internal/", nil)
	closeReq.Close = true
	cases = append(cases, struct {
		name string
		req  *http.Request
		fast bool
	}{"Close", closeReq, false})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mine bytes.Buffer
			bw := bufio.NewWriter(&mine)
			fast, err := writeRequestHead(bw, tc.req)
			bw.Flush()
			if err != nil {
				t.Fatal(err)
			}
			if fast != tc.fast {
				t.Fatalf("fast = %v, want %v", fast, tc.fast)
			}
			if !fast {
				if mine.Len() != 0 {
					t.Fatalf("declined but wrote %q", mine.String())
				}
				return
			}
			var want bytes.Buffer
			if err := tc.req.Write(&want); err != nil {
				t.Fatal(err)
			}
			if mine.String() != want.String() {
				t.Fatalf("wrote\n%q\nnet/http writes\n%q", mine.String(), want.String())
			}
		})
	}
}

// responseCases are response heads (and bodies) the parser must read as
// http.ReadResponse does, or decline.
var responseCases = []struct {
	name, method, raw string
	fast              bool // the parser takes it (else net/http does)
}{
	{"plain 200", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloNEXT", true},
	{"no headers", "GET", "HTTP/1.1 204 No Content\r\n\r\n", true},
	{"no reason phrase with space", "GET", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", true},
	{"no reason phrase", "GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false},
	{"odd reason", "GET", "HTTP/1.1 404 Not  Found \x01\r\nContent-Length: 3\r\n\r\nabc", true},
	{"lower-case keys", "GET", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-backend-peer: gw\r\nSERVER: s\r\n\r\nok", true},
	{"repeated keys", "GET", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 1\r\nset-cookie: b=2\r\nSet-Cookie:c=3\r\n\r\nx", true},
	{"whitespace around values", "GET", "HTTP/1.1 200 OK\r\nX-A:   v  \t\r\nX-B:\t\tw\r\nX-Empty:\r\nX-Spaces:    \r\nContent-Length: 1\r\n\r\n!", true},
	{"obs-text value", "GET", "HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\nContent-Length: 0\r\n\r\n", true},
	{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nhi", true},
	{"connection other", "GET", "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\nhi", true},
	{"HEAD with length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nNEXT", true},
	{"HEAD without length", "HEAD", "HTTP/1.1 200 OK\r\n\r\n", true},
	{"304 with length", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\nNEXT", true},
	{"trailer header without chunking", "GET", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 1\r\n\r\n1", true},
	{"500", "GET", "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy", true},
	{"zero length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nNEXT", true},
	{"length with spaces", "GET", "HTTP/1.1 200 OK\r\nContent-Length:  3 \r\n\r\nabc", true},
	{"short body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true},
	// Declined: net/http decides these.
	{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
	{"unbounded", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", false},
	{"informational", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
	{"folded header", "GET", "HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n", false},
	{"space before colon", "GET", "HTTP/1.1 200 OK\r\nX-Bad : a\r\nContent-Length: 0\r\n\r\n", false},
	{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", false},
	{"bare LF in a header", "GET", "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n", false},
	{"CR in a value", "GET", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", false},
	{"two lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
	{"conflicting lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", false},
	{"bad length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false},
	{"empty length", "GET", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false},
	{"pragma", "GET", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", false},
	{"bad status", "GET", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"incomplete head", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", false},
	{"no colon", "GET", "HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n", false},
}

func TestParseResponseHeadMatchesNetHTTP(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			if fast := compareResponseParsers(t, tc.method, []byte(tc.raw)); fast != tc.fast {
				t.Fatalf("parser took it: %v, want %v", fast, tc.fast)
			}
		})
	}
}

func FuzzParseResponseHead(f *testing.F) {
	for _, tc := range responseCases {
		f.Add(tc.method == http.MethodHead, []byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, head bool, raw []byte) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		compareResponseParsers(t, method, raw)
	})
}

// compareResponseParsers reads raw with parseResponseHead and with
// http.ReadResponse and fails if they disagree on anything the forwarder
// uses, on the body, or on what is left in the reader. It reports whether
// parseResponseHead took the response.
func compareResponseParsers(t *testing.T, method string, raw []byte) bool {
	t.Helper()
	req := &http.Request{Method: method, URL: &url.URL{Scheme: "https", Host: "api.internal", Path: "/"}}
	mineR := bufio.NewReaderSize(bytes.NewReader(raw), 4096)
	if _, err := mineR.Peek(1); err != nil {
		return false
	}
	before := mineR.Buffered()
	mine := parseResponseHead(mineR, req)
	if mine == nil {
		if mineR.Buffered() != before {
			t.Fatalf("declined after consuming %d bytes", before-mineR.Buffered())
		}
		return false
	}
	theirR := bufio.NewReaderSize(bytes.NewReader(raw), 4096)
	theirs, err := http.ReadResponse(theirR, req)
	if err != nil {
		t.Fatalf("accepted what net/http rejects (%v): %q", err, raw)
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"Status", mine.Status, theirs.Status},
		{"StatusCode", mine.StatusCode, theirs.StatusCode},
		{"Proto", mine.Proto, theirs.Proto},
		{"ProtoMajor", mine.ProtoMajor, theirs.ProtoMajor},
		{"ProtoMinor", mine.ProtoMinor, theirs.ProtoMinor},
		{"Header", mine.Header, theirs.Header},
		{"ContentLength", mine.ContentLength, theirs.ContentLength},
		{"TransferEncoding", mine.TransferEncoding, theirs.TransferEncoding},
		{"Close", mine.Close, theirs.Close},
		{"Trailer", mine.Trailer, theirs.Trailer},
		{"Uncompressed", mine.Uncompressed, theirs.Uncompressed},
		{"Request", mine.Request, theirs.Request},
		{"NoBody", mine.Body == http.NoBody, theirs.Body == http.NoBody},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Fatalf("%s: got %#v, net/http %#v (input %q)", c.what, c.got, c.want, raw)
		}
	}
	mb, merr := io.ReadAll(mine.Body)
	tb, terr := io.ReadAll(theirs.Body)
	if !bytes.Equal(mb, tb) || !errors.Is(merr, terr) && (merr == nil) != (terr == nil) {
		t.Fatalf("body %q (%v), net/http %q (%v)", mb, merr, tb, terr)
	}
	if merr != nil && terr != nil && !errors.Is(merr, io.ErrUnexpectedEOF) {
		t.Fatalf("body error %v, net/http %v", merr, terr)
	}
	mrest, _ := io.ReadAll(mineR)
	trest, _ := io.ReadAll(theirR)
	if !bytes.Equal(mrest, trest) {
		t.Fatalf("left %q, net/http left %q", mrest, trest)
	}
	return true
}

func FuzzWriteRequestHead(f *testing.F) {
	f.Add("GET", "/a/b", "x=1", "X-Key", " v ", "ua/1", true)
	f.Add("POST", "/", "", "accept", "*/*", "", false)
	f.Add("DELETE", "/a%2Fb", "q=%zz;x", "X-A", "a\tb", " ", true)
	f.Fuzz(func(t *testing.T, method, path, query, key, value, ua string, withUA bool) {
		u := &url.URL{Scheme: "https", Host: "api.internal:8443", Path: path, RawQuery: query}
		h := http.Header{key: {value, value + "2"}}
		if withUA {
			h["User-Agent"] = []string{ua}
		}
		req := &http.Request{Method: method, URL: u, Header: h}
		if validRequest(req) != nil {
			return // the client refuses it before writing
		}
		var mine bytes.Buffer
		bw := bufio.NewWriter(&mine)
		fast, err := writeRequestHead(bw, req)
		bw.Flush()
		if err != nil {
			if mine.Len() != 0 {
				t.Fatalf("refused (%v) but wrote %q", err, mine.String())
			}
			if validHeader(req.Header) == nil {
				t.Fatalf("refused a valid header: %v", err)
			}
			return
		}
		if !fast {
			if mine.Len() != 0 {
				t.Fatalf("declined but wrote %q", mine.String())
			}
			return
		}
		var want bytes.Buffer
		if err := req.Write(&want); err != nil {
			t.Fatalf("wrote %q for a request net/http refuses: %v", mine.String(), err)
		}
		if mine.String() != want.String() {
			t.Fatalf("wrote\n%q\nnet/http writes\n%q", mine.String(), want.String())
		}
	})
}

func TestHasCTLExceptTab(t *testing.T) {
	for c := range 256 {
		want := c < ' ' && c != '\t' || c == 0x7f
		for _, pos := range []int{0, 3, 7, 8, 13, 16, 20} {
			b := []byte(strings.Repeat("a", 21))
			b[pos] = byte(c)
			if got := hasCTLExceptTab(string(b)); got != want {
				t.Fatalf("byte %#x at %d: got %v, want %v", c, pos, got, want)
			}
		}
	}
	if hasCTLExceptTab("") || hasCTLExceptTab("plain value with\ttab and caf\xc3\xa9 and \xff") {
		t.Fatal("clean values reported")
	}
}
