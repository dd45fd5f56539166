package policy

import (
	"testing"
	"time"
)

type spendStep struct {
	at        time.Time
	allowed   bool
	remaining int64
	reset     time.Duration
}

func utc(y int, m time.Month, d, h, min, s int) time.Time {
	return time.Date(y, m, d, h, min, s, 0, time.UTC)
}

func TestMemoryQuotas(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name  string
		quota Quota
		steps []spendStep
	}{
		{
			name:  "a daily quota is used up and resets at midnight UTC",
			quota: Quota{Limit: 3, Window: QuotaDay},
			steps: []spendStep{
				{utc(2026, 5, 10, 22, 0, 0), true, 2, 2 * time.Hour},
				{utc(2026, 5, 10, 23, 0, 0), true, 1, time.Hour},
				{utc(2026, 5, 10, 23, 30, 0), true, 0, 30 * time.Minute},
				{utc(2026, 5, 10, 23, 59, 59), false, 0, time.Second},
				{utc(2026, 5, 11, 0, 0, 0), true, 2, 24 * time.Hour},
			},
		},
		{
			name:  "the day is the UTC day whatever the caller's zone",
			quota: Quota{Limit: 1, Window: QuotaDay},
			steps: []spendStep{
				// 01:00 in Paris on the 11th is 23:00 UTC on the 10th.
				{time.Date(2026, 5, 11, 1, 0, 0, 0, paris), true, 0, time.Hour},
				{utc(2026, 5, 10, 23, 30, 0), false, 0, 30 * time.Minute},
			},
		},
		{
			name:  "a monthly quota crosses the month boundary",
			quota: Quota{Limit: 2, Window: QuotaMonth},
			steps: []spendStep{
				{utc(2026, 1, 1, 0, 0, 0), true, 1, 31 * 24 * time.Hour},
				{utc(2026, 1, 31, 23, 59, 58), true, 0, 2 * time.Second},
				{utc(2026, 1, 31, 23, 59, 59), false, 0, time.Second},
				{utc(2026, 2, 1, 0, 0, 0), true, 1, 28 * 24 * time.Hour},
			},
		},
		{
			name:  "February of a leap year has 29 days",
			quota: Quota{Limit: 5, Window: QuotaMonth},
			steps: []spendStep{
				{utc(2028, 2, 1, 0, 0, 0), true, 4, 29 * 24 * time.Hour},
				{utc(2028, 2, 29, 12, 0, 0), true, 3, 12 * time.Hour},
			},
		},
		{
			name:  "December rolls into the next year",
			quota: Quota{Limit: 1, Window: QuotaMonth},
			steps: []spendStep{
				{utc(2026, 12, 31, 23, 0, 0), true, 0, time.Hour},
				{utc(2027, 1, 1, 0, 0, 0), true, 0, 31 * 24 * time.Hour},
			},
		},
		{
			name:  "an unknown window denies (fails closed)",
			quota: Quota{Limit: 10, Window: "week"},
			steps: []spendStep{{utc(2026, 1, 1, 0, 0, 0), false, 0, 0}},
		},
		{
			name:  "a zero limit denies",
			quota: Quota{Limit: 0, Window: QuotaDay},
			steps: []spendStep{{utc(2026, 1, 1, 0, 0, 0), false, 0, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewMemoryQuotas()
			for i, s := range tt.steps {
				d := c.Spend("k", tt.quota, s.at)
				want := QuotaDecision{Allowed: s.allowed, Remaining: s.remaining, Reset: s.reset}
				if d != want {
					t.Fatalf("step %d at %s: got %+v, want %+v", i, s.at, d, want)
				}
			}
		})
	}
}

func TestQuotaValidate(t *testing.T) {
	for _, q := range []Quota{{Limit: 0, Window: QuotaDay}, {Limit: 1, Window: "Day"}, {Limit: 1}} {
		if err := q.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted it", q)
		}
	}
	if err := (Quota{Limit: 1, Window: QuotaMonth}).Validate(); err != nil {
		t.Errorf("Validate(1 per month) = %v", err)
	}
}

func TestMemoryQuotasSweep(t *testing.T) {
	c := NewMemoryQuotas()
	q := Quota{Limit: 5, Window: QuotaDay}
	c.Spend("yesterday", q, utc(2026, 5, 10, 12, 0, 0))
	c.Spend("today", q, utc(2026, 5, 11, 12, 0, 0))
	if n := c.Sweep(utc(2026, 5, 11, 12, 0, 0)); n != 1 || c.Len() != 1 {
		t.Fatalf("Sweep removed %d, left %d; want 1 and 1", n, c.Len())
	}
	if d := c.Spend("today", q, utc(2026, 5, 11, 13, 0, 0)); d.Remaining != 3 {
		t.Errorf("today's count was lost: %+v", d)
	}
}
