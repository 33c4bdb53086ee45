package webhook

import (
	"net/http"
	"testing"
	"time"
)

// The Standard Webhooks reference vector: secret, id, timestamp and body
// from the specification's examples.
func TestSignReferenceVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ts := time.Unix(1614265330, 0)
	got, err := Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	now := time.Now()
	body := []byte(`{"a":1}`)
	h := http.Header{}
	if err := SetHeaders(h, secret, "msg_1", now, body); err != nil {
		t.Fatal(err)
	}
	if err := Verify(secret, h, body, now, time.Minute); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	cases := map[string]func() (http.Header, []byte, time.Time){
		"tampered body": func() (http.Header, []byte, time.Time) { return h, []byte(`{"a":2}`), now },
		"old timestamp": func() (http.Header, []byte, time.Time) { return h, body, now.Add(10 * time.Minute) },
		"other secret": func() (http.Header, []byte, time.Time) {
			h2 := http.Header{}
			SetHeaders(h2, "whsec_"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_1", now, body)
			return h2, body, now
		},
		"missing headers": func() (http.Header, []byte, time.Time) { return http.Header{}, body, now },
	}
	for name, c := range cases {
		hh, b, at := c()
		if err := Verify(secret, hh, b, at, time.Minute); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
