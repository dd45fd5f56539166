package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// The HTTP/1.1 client's wire format for the common message, with
// net/http's own code as the reference: writeRequestHead writes exactly
// the bytes http.Request.Write writes, and parseResponseHead returns the
// response http.ReadResponse returns, for the messages each accepts (the
// tests compare them on many inputs). Anything else (a request with a
// body, an unusual host, a response that is informational, chunked, of
// unbounded length or whose head is not in the read buffer yet, headers
// folded over lines) is handed to net/http, before anything was written
// or consumed.

// writeRequestHead writes req's request line and header to bw. It returns
// false, having written nothing, when req is not the common message; the
// caller then uses req.Write. Like the Transport, it refuses (with an
// error, writing nothing) header names that are not tokens and values with
// control characters.
func writeRequestHead(bw *bufio.Writer, req *http.Request) (bool, error) {
	if req.Body != nil || req.Trailer != nil || len(req.TransferEncoding) > 0 || req.Close ||
		req.Method == http.MethodConnect || req.URL.Opaque != "" {
		return false, validHeader(req.Header)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !plainHost(host) {
		return false, validHeader(req.Header)
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	query := req.URL.ForceQuery || req.URL.RawQuery != ""
	if hasCTL(path) || query && hasCTL(req.URL.RawQuery) {
		return false, validHeader(req.Header)
	}
	// Header names in net/http's order (sorted), without the ones it
	// writes itself.
	var keyArray [32]string
	keys := keyArray[:0]
	for k, vv := range req.Header {
		if err := validField(k, vv); err != nil {
			return false, err
		}
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)

	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if query {
		bw.WriteByte('?')
		bw.WriteString(req.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	ua := "Go-http-client/1.1"
	if _, ok := req.Header["User-Agent"]; ok {
		ua = req.Header.Get("User-Agent")
	}
	if ua != "" {
		bw.WriteString("User-Agent: ")
		// net/http turns CR and LF into spaces; validField refused them.
		bw.WriteString(textproto.TrimString(ua))
		bw.WriteString("\r\n")
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		// Many servers expect a length on these methods.
		bw.WriteString("Content-Length: 0\r\n")
	}
	for _, k := range keys {
		for _, v := range req.Header[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(textproto.TrimString(v))
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	return true, nil
}

// validHeader applies the Transport's checks to h: names must be tokens,
// values must have no control characters other than tab.
func validHeader(h http.Header) error {
	for k, vv := range h {
		if err := validField(k, vv); err != nil {
			return err
		}
	}
	return nil
}

func validField(k string, vv []string) error {
	if !isToken(k) {
		return fmt.Errorf("net/http: invalid header field name %q", k)
	}
	for _, v := range vv {
		if hasCTLExceptTab(v) {
			// Not the value: it may be a credential.
			return fmt.Errorf("net/http: invalid header field value for %q", k)
		}
	}
	return nil
}

// hasCTLExceptTab reports whether v has a control character (below space,
// or DEL) other than horizontal tab. Values can be long (forwarded
// certificates), so it tests eight bytes at a time: a word has a byte below
// 0x20 or equal to 0x7f only if the classic has-less/has-zero tests say so,
// and then the bytes are looked at one by one.
func hasCTLExceptTab(v string) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := uint64(v[i]) | uint64(v[i+1])<<8 | uint64(v[i+2])<<16 | uint64(v[i+3])<<24 |
			uint64(v[i+4])<<32 | uint64(v[i+5])<<40 | uint64(v[i+6])<<48 | uint64(v[i+7])<<56
		del := w ^ 0x7f7f7f7f7f7f7f7f
		if (w-0x20*ones)&^w&highs != 0 || (del-ones)&^del&highs != 0 {
			if ctlExceptTab(v[i : i+8]) {
				return true
			}
		}
	}
	return ctlExceptTab(v[i:])
}

func ctlExceptTab(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return true
		}
	}
	return false
}

// plainHost reports whether a Host value needs none of net/http's
// treatment (punycode, zone removal, blanking an invalid value).
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// parseResponseHead reads the head of a final response with a known length
// (Content-Length, or no body for HEAD, 204 and 304) when all of it is in
// br's buffer, and returns the response with its body, as http.ReadResponse
// would. It returns nil, having consumed nothing, for any other response.
func parseResponseHead(br *bufio.Reader, req *http.Request) *http.Response {
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		return nil
	}
	head := buf[:end+2] // every line with its CRLF
	// Status line: HTTP/1.1 SP 3DIGIT SP reason.
	const proto = "HTTP/1.1 "
	if len(head) < len(proto)+5 || string(head[:len(proto)]) != proto {
		return nil
	}
	lineEnd := bytes.IndexByte(head, '\n')
	if lineEnd < len(proto)+5 {
		return nil
	}
	status := head[len(proto) : lineEnd-1]
	if head[lineEnd-1] != '\r' || len(status) < 4 || status[3] != ' ' ||
		status[0] < '2' || status[0] > '5' || !isDigit(status[1]) || !isDigit(status[2]) ||
		bytes.IndexByte(status, '\r') >= 0 {
		return nil
	}
	code := int(status[0]-'0')*100 + int(status[1]-'0')*10 + int(status[2]-'0')

	// Header lines, checked as textproto checks them.
	lines := head[lineEnd+1:]
	n := bytes.Count(lines, crlf)
	if n > 256 {
		return nil
	}
	type field struct{ ks, ke, vs, ve int }
	var fieldArray [32]field
	fields := fieldArray[:0]
	base := lineEnd + 1
	for off := 0; off < len(lines); {
		e := bytes.Index(lines[off:], crlf)
		line := lines[off : off+e]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.IndexByte(line, '\n') >= 0 {
			return nil
		}
		for _, c := range line[:colon] {
			if !validFieldByte(c) {
				return nil
			}
		}
		vs, ve := colon+1, len(line)
		for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
			vs++
		}
		for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
			ve--
		}
		for _, c := range line[vs:ve] {
			if !validValueByte(c) {
				return nil
			}
		}
		fields = append(fields, field{base + off, base + off + colon, base + off + vs, base + off + ve})
		off += e + 2
	}

	// One string holds the status text and every key and value.
	text := string(buf[:end])
	h := make(http.Header, len(fields))
	values := make([]string, len(fields))
	for i, f := range fields {
		k := textproto.CanonicalMIMEHeaderKey(text[f.ks:f.ke])
		v := text[f.vs:f.ve]
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
			continue
		}
		values[i] = v
		h[k] = values[i : i+1 : i+1]
	}

	// What readTransfer decides, for the messages accepted here.
	if _, ok := h["Transfer-Encoding"]; ok {
		return nil
	}
	if _, ok := h["Pragma"]; ok {
		return nil
	}
	length := int64(-1)
	if cl, ok := h["Content-Length"]; ok {
		if len(cl) != 1 {
			return nil
		}
		v, err := strconv.ParseUint(textproto.TrimString(cl[0]), 10, 63)
		if err != nil {
			return nil
		}
		length = int64(v)
	}
	res := &http.Response{
		Status:     text[len(proto) : lineEnd-1],
		StatusCode: code,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Request:    req,
	}
	if headerHasToken(h["Connection"], "close") {
		delete(h, "Connection")
		res.Close = true
	}
	bodyLen := length
	switch {
	case req.Method == http.MethodHead, code == http.StatusNoContent, code == http.StatusNotModified:
		bodyLen = 0
	case length < 0:
		// Unbounded: read until the upstream closes. net/http's.
		return nil
	}
	res.ContentLength = bodyLen
	if req.Method == http.MethodHead {
		res.ContentLength = length
	}
	_, _ = br.Discard(end + 4)
	if bodyLen == 0 {
		res.Body = http.NoBody
	} else {
		res.Body = &lengthBody{br: br, n: bodyLen}
	}
	return res
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// validFieldByte reports whether c may appear in a header name (a token
// character).
func validFieldByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validValueByte reports whether c may appear in a header value: visible
// characters, space, tab and obs-text.
func validValueByte(c byte) bool {
	return c == '\t' || c >= ' ' && c != 0x7f
}

// lengthBody reads a body of n bytes from br. Like net/http's, it reports
// io.EOF with the last bytes, and io.ErrUnexpectedEOF if the connection
// ends early.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
