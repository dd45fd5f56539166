package pki

import (
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// IndexEntry is one certificate the CA has signed, as kept in index.json.
type IndexEntry struct {
	// Serial is the serial number in lowercase hex without separators.
	Serial string `json:"serial"`
	// Subject is the certificate's subject distinguished name.
	Subject string `json:"subject"`
	// NotAfter is the end of the certificate's validity.
	NotAfter time.Time `json:"not_after"`
	// RevokedAt is when the certificate was revoked, or nil if it is not.
	RevokedAt *time.Time `json:"revoked_at"`
	// Reason is the RFC 5280 CRL reason code, or nil if not revoked.
	Reason *int `json:"reason"`
}

// index is the whole content of index.json.
type index struct {
	// CRLNumber is the number of the last CRL published; the next is one more.
	CRLNumber int64        `json:"crl_number"`
	Issued    []IndexEntry `json:"issued"`
}

func (ix *index) find(serial *big.Int) *IndexEntry {
	s := FormatSerial(serial)
	for i := range ix.Issued {
		if strings.EqualFold(ix.Issued[i].Serial, s) {
			return &ix.Issued[i]
		}
	}
	return nil
}

func loadIndex(dir string) (*index, error) {
	path := filepath.Join(dir, IndexFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA index %q: %w", path, err)
	}
	var ix index
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("reading CA index %q: %w: %v", path, ErrCorruptIndex, err)
	}
	if ix.CRLNumber < 0 {
		return nil, fmt.Errorf("reading CA index %q: %w: negative crl_number", path, ErrCorruptIndex)
	}
	return &ix, nil
}

func (ix *index) bytes() ([]byte, error) {
	if ix.Issued == nil {
		ix.Issued = []IndexEntry{}
	}
	data, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding CA index: %w", err)
	}
	return append(data, '\n'), nil
}

func (ix *index) save(dir string) error {
	data, err := ix.bytes()
	if err != nil {
		return err
	}
	return replaceFile(filepath.Join(dir, IndexFile), data, 0o600)
}
