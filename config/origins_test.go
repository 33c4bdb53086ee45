package config_test

import (
	"reflect"
	"testing"

	"github.com/wardenlab/warden/config"
)

func TestParseOrigins(t *testing.T) {
	got, err := config.ParseOrigins(" https://App.Example.com , http://localhost:3000/,")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://app.example.com", "http://localhost:3000"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, err := config.ParseOrigins(""); err != nil || got != nil {
		t.Errorf("empty: %q %v, want none", got, err)
	}
	for _, bad := range []string{"*", "example.com", "ftp://example.com", "https://", "https://a.example/path",
		"https://a.example?x=1", "https://u:p@a.example", "https://a.example/#f", "null"} {
		if _, err := config.ParseOrigins("https://ok.example," + bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestLoadCORSOrigins(t *testing.T) {
	c, err := load(t, map[string]string{"WARDEN_CORS_ORIGINS": "https://app.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://app.example.com"}; !reflect.DeepEqual(c.CORSOrigins, want) {
		t.Errorf("CORSOrigins %q, want %q", c.CORSOrigins, want)
	}
	if err := loadErr(t, "WARDEN_CORS_ORIGINS", "*"); err == nil {
		t.Error("WARDEN_CORS_ORIGINS=*: no error")
	}
}
