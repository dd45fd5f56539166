package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"unicode/utf16"

	"github.com/portcullis/portcullis/internal/keymaterial"
)

// This file adds a friendlyName to the key bag of a PKCS#12 file made by
// go-pkcs12, whose Encoder writes none (SSLMate/go-pkcs12 issue #49), so
// that keytool lists the entry under its alias instead of "1". Only the
// plaintext SafeContents holding the shrouded key bag is touched; the
// encrypted certificates and the encrypted key are kept byte for byte, and
// the MAC is recomputed over the new authenticated safe (RFC 7292).

var (
	oidP12Data        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidP12ShroudedKey = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidP12Friendly    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidSHA256         = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac        p12DigestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type p12DigestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []p12Attribute `asn1:"set,optional"`
}

type p12Attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// explicitOctets wraps data as [0] EXPLICIT OCTET STRING, the content of a
// PKCS#7 data ContentInfo.
func explicitOctets(data []byte) (asn1.RawValue, error) {
	inner, err := asn1.Marshal(data)
	if err != nil {
		return asn1.RawValue{}, err
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}, nil
}

func unwrapOctets(v asn1.RawValue) ([]byte, error) {
	var octets []byte
	if rest, err := asn1.Unmarshal(v.Bytes, &octets); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("malformed PKCS#12 data content")
	}
	return octets, nil
}

// setKeyFriendlyName returns der with a friendlyName attribute of alias on
// every shrouded key bag, and a fresh HMAC-SHA256 MAC under password.
func setKeyFriendlyName(der []byte, alias string, password []byte) ([]byte, error) {
	var pfx p12PFX
	if rest, err := asn1.Unmarshal(der, &pfx); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("re-reading PKCS#12: malformed PFX")
	}
	if !pfx.MacData.Mac.Algorithm.Algorithm.Equal(oidSHA256) {
		return nil, fmt.Errorf("re-reading PKCS#12: unexpected MAC algorithm %s", pfx.MacData.Mac.Algorithm.Algorithm)
	}
	safe, err := unwrapOctets(pfx.AuthSafe.Content)
	if err != nil {
		return nil, err
	}
	var contents []p12ContentInfo
	if rest, err := asn1.Unmarshal(safe, &contents); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("re-reading PKCS#12: malformed authenticated safe")
	}
	name, err := friendlyNameAttribute(alias)
	if err != nil {
		return nil, err
	}
	labelled := 0
	for i, ci := range contents {
		if !ci.ContentType.Equal(oidP12Data) {
			continue
		}
		octets, err := unwrapOctets(ci.Content)
		if err != nil {
			return nil, err
		}
		var bags []p12SafeBag
		if rest, err := asn1.Unmarshal(octets, &bags); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("re-reading PKCS#12: malformed safe contents")
		}
		for j := range bags {
			if bags[j].ID.Equal(oidP12ShroudedKey) {
				bags[j].Attributes = append(bags[j].Attributes, name)
				labelled++
			}
		}
		octets, err = asn1.Marshal(bags)
		if err != nil {
			return nil, fmt.Errorf("re-encoding PKCS#12 safe contents: %w", err)
		}
		if contents[i].Content, err = explicitOctets(octets); err != nil {
			return nil, fmt.Errorf("re-encoding PKCS#12 safe contents: %w", err)
		}
	}
	if labelled == 0 {
		return nil, fmt.Errorf("re-reading PKCS#12: no key bag to label")
	}
	if safe, err = asn1.Marshal(contents); err != nil {
		return nil, fmt.Errorf("re-encoding PKCS#12 authenticated safe: %w", err)
	}
	if pfx.AuthSafe.Content, err = explicitOctets(safe); err != nil {
		return nil, fmt.Errorf("re-encoding PKCS#12 authenticated safe: %w", err)
	}
	pfx.MacData.Mac.Digest = keymaterial.PKCS12MACSHA256(password, pfx.MacData.MacSalt, pfx.MacData.Iterations, safe)
	out, err := asn1.Marshal(pfx)
	if err != nil {
		return nil, fmt.Errorf("re-encoding PKCS#12: %w", err)
	}
	return out, nil
}

func friendlyNameAttribute(alias string) (p12Attribute, error) {
	var bmp []byte
	for _, u := range utf16.Encode([]rune(alias)) {
		bmp = append(bmp, byte(u>>8), byte(u))
	}
	value, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagBMPString, Bytes: bmp})
	if err != nil {
		return p12Attribute{}, fmt.Errorf("encoding alias: %w", err)
	}
	return p12Attribute{
		ID:    oidP12Friendly,
		Value: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: value},
	}, nil
}
