package scalar

import (
	"bytes"
	"testing"
	"time"
)

func TestTime(t *testing.T) {
	zone := time.FixedZone("UTC-5", -5*3600)
	in := time.Date(2026, 1, 15, 5, 30, 0, 123456000, zone)
	var buf bytes.Buffer
	MarshalTime(in).MarshalGQL(&buf)
	if got, want := buf.String(), `"2026-01-15T10:30:00.123456Z"`; got != want {
		t.Fatalf("marshal: got %s, want %s", got, want)
	}
	back, err := UnmarshalTime("2026-01-15T05:30:00.123456-05:00")
	if err != nil || !back.Equal(in) || back.Location() != time.UTC {
		t.Fatalf("unmarshal: %v %v", back, err)
	}
	for _, bad := range []any{"yesterday", 12, nil} {
		if _, err := UnmarshalTime(bad); err == nil {
			t.Errorf("UnmarshalTime(%v) accepted", bad)
		}
	}
}
