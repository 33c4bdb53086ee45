package c2pa

import (
	"bytes"
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// TestTimeStampHostile: a token that is garbage, truncated, over other
// data, altered after signing, from a TSA outside the anchors or without
// the timeStamping usage never verifies (and never panics); the untouched
// token does, so each case can fail.
func TestTimeStampHostile(t *testing.T) {
	root := testRoot(t, "TS Root")
	tsa := testTSA(t, root)
	plain := testSigner(t, root, "Not A TSA", day(2019, 1, 1), day(2045, 1, 1))
	anchors := x509.NewCertPool()
	anchors.AddCert(root.cert)
	tbs := []byte("signature bytes")
	good := makeTimeStamp(t, tsa, nil, tbs, day(2020, 6, 1))
	if ts := verifyTimeStampToken(good, tbs, anchors); !ts.Verified || !ts.Time.Equal(day(2020, 6, 1)) || ts.Authority != "Warden Test TSA" {
		t.Fatalf("good token: %+v", ts)
	}
	// The TSTInfo's genTime sits inside the signed content: flip a digit.
	altered := bytes.Clone(good)
	i := bytes.Index(altered, []byte("20200601"))
	altered[i+3] = '1'
	cases := map[string]struct {
		der     []byte
		tbs     []byte
		anchors *x509.CertPool
		want    string
	}{
		"garbage":      {[]byte("not a token"), tbs, anchors, "does not parse"},
		"empty":        {nil, tbs, anchors, "does not parse"},
		"truncated":    {good[:len(good)/2], tbs, anchors, ""},
		"other data":   {good, []byte("other"), anchors, "message imprint"},
		"altered":      {altered, tbs, anchors, "message digest"},
		"no anchors":   {good, tbs, nil, "no trust anchors"},
		"other anchor": {good, tbs, x509.NewCertPool(), "not trusted"},
		"not a TSA":    {makeTimeStamp(t, plain, nil, tbs, day(2020, 6, 1)), tbs, anchors, "timeStamping"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ts := verifyTimeStampToken(tc.der, tc.tbs, tc.anchors)
			if ts.Verified || ts.Error == "" || !strings.Contains(ts.Error, tc.want) {
				t.Fatalf("got %+v, want an error containing %q", ts, tc.want)
			}
		})
	}
	for n := 0; n < len(good); n += 7 {
		if ts := verifyTimeStampToken(good[:n], tbs, anchors); ts.Verified {
			t.Fatalf("token truncated to %d bytes verified", n)
		}
	}
}

// TestIngredientReferencesHostile: an ingredient pointing at the active
// manifest, at a box that is not a manifest or at nothing is reported as
// a failed ingredient, not followed.
func TestIngredientReferencesHostile(t *testing.T) {
	anchorsPEM, scenarios := buildScenarios(t)
	anchors, err := LoadTrustAnchors(anchorsPEM)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, sc := range scenarios {
		if sc.name == "broken_ingredient" {
			data = sc.data
		}
	}
	storeBytes, _, _ := FindManifestStore(data)
	store, _ := ParseJUMBF(storeBytes)
	active, _ := activeManifest(store)
	v := &verifier{opts: Options{TrustAnchors: anchors, Now: func() time.Time { return scenarioNow }, Context: context.Background()},
		data: data, store: store, budget: newBudget(len(data))}
	for name, url := range map[string]string{
		"self":      "self#jumbf=/c2pa/" + active.Label(),
		"assertion": "self#jumbf=/c2pa/" + uuidLabel(7) + "/c2pa.assertions",
		"missing":   "self#jumbf=/c2pa/urn:uuid:nothing",
		"foreign":   "https://example.com/manifest",
	} {
		t.Run(name, func(t *testing.T) {
			st := v.verifyIngredients(active, []ingredientRef{{title: name, manifest: &HashedURI{URL: url}}})
			if len(st) != 1 || st[0].Valid || st[0].Intact || st[0].Error == "" {
				t.Fatalf("got %+v", st)
			}
		})
	}
	var many []ingredientRef
	for i := 0; i < 3*MaxIngredientManifests; i++ {
		many = append(many, ingredientRef{title: "x", manifest: &HashedURI{URL: "self#jumbf=/c2pa/urn:uuid:nothing"}})
	}
	if st := v.verifyIngredients(active, many); len(st) != MaxIngredientManifests {
		t.Errorf("%d ingredient statuses, want the cap %d", len(st), MaxIngredientManifests)
	}
}
