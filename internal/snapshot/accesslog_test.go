package snapshot

import (
	"reflect"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
)

func TestAccessLogFormat(t *testing.T) {
	f := config.File{
		Log: config.Log{
			AccessLogHeaders: []string{"user-agent", "X-Partner-Key", "x-api-key", "X-Session", "Cookie", "User-Agent", "x-trace"},
			RedactHeaders:    []string{"X-SESSION"},
			Redact:           []config.AccessLogField{config.RedactPath, config.RedactClientAddress},
		},
		APIs: []config.API{
			{Name: "keys", APIKey: &config.APIKeyPolicy{Header: "x-partner-key"}},
			{Name: "open"},
		},
	}
	got := accessLogFormat(f)
	want := AccessLogFormat{
		Headers: []LoggedHeader{
			{Name: "User-Agent", Key: "user-agent"},
			{Name: "X-Partner-Key", Key: "x-partner-key", Redact: true},
			{Name: "X-Api-Key", Key: "x-api-key", Redact: true},
			{Name: "X-Session", Key: "x-session", Redact: true},
			{Name: "Cookie", Key: "cookie", Redact: true},
			{Name: "X-Trace", Key: "x-trace"},
		},
		RedactClientAddress: true,
		RedactPath:          true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if z := accessLogFormat(config.File{}); !reflect.DeepEqual(z, AccessLogFormat{}) {
		t.Errorf("no options compiled to %+v, want the zero value", z)
	}
}
