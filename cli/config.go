package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Client-side environment variables. They are WARDEN_CLIENT_* so that
// none is read by the server's configuration (config.Load reads other
// WARDEN_* names): a shell that runs both never mixes them up.
const (
	EnvURL          = "WARDEN_CLIENT_URL"
	EnvOrgID        = "WARDEN_CLIENT_ORG_ID"
	EnvAPIKey       = "WARDEN_CLIENT_API_KEY"
	EnvToken        = "WARDEN_CLIENT_TOKEN"
	EnvOAuthID      = "WARDEN_CLIENT_OAUTH_ID"
	EnvOAuthSecret  = "WARDEN_CLIENT_OAUTH_SECRET"
	EnvConfig       = "WARDEN_CLIENT_CONFIG"
	DefaultURL      = "http://localhost:8000"
	configFileName  = "config.json"
	configDirName   = "warden"
	secretFileModes = 0o077 // group and other bits: a file with credentials must have none
)

// fileConfig is the client's config file (JSON):
//
//	{"url": "https://warden.example.com", "org_id": "…", "api_key": "…"}
//
// or, instead of the API key, "token" (an access token) or "client_id"
// and "client_secret" (an OAuth2 client, exchanged for a token per run).
type fileConfig struct {
	URL          string `json:"url"`
	OrgID        string `json:"org_id"`
	APIKey       string `json:"api_key"`
	Token        string `json:"token"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (f fileConfig) hasSecret() bool {
	return f.APIKey != "" || f.Token != "" || f.ClientSecret != ""
}

// credentials are what a command calls the API with, resolved from flags,
// then the environment, then the config file.
type credentials struct {
	URL, OrgID, APIKey, Token string
	ClientID, ClientSecret    string
}

// defaultConfigPath is $XDG_CONFIG_HOME/warden/config.json (or the
// platform's user config directory), "" when there is none.
func defaultConfigPath(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, configDirName, configFileName)
	}
	if h := getenv("HOME"); h != "" && runtime.GOOS != "windows" && runtime.GOOS != "darwin" {
		return filepath.Join(h, ".config", configDirName, configFileName)
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, configDirName, configFileName)
}

// loadConfigFile reads path; a missing file is no error unless it was
// named explicitly. A file holding a secret must not be readable by group
// or others.
func loadConfigFile(path string, explicit bool) (fileConfig, error) {
	var fc fileConfig
	if path == "" {
		return fc, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return fc, nil
	}
	if err != nil {
		return fc, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fc, fmt.Errorf("config file: %w", err)
	}
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return fc, fmt.Errorf("config file %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); fc.hasSecret() && perm&secretFileModes != 0 && runtime.GOOS != "windows" {
		return fileConfig{}, fmt.Errorf("config file %s holds credentials but its mode is %04o: run chmod 600 %s", path, perm, path)
	}
	return fc, nil
}

// resolve merges flags (set ones win), the environment and the file.
func resolve(g *globalFlags, getenv func(string) string) (credentials, error) {
	path, explicit := g.config, g.config != ""
	if path == "" {
		if path = getenv(EnvConfig); path != "" {
			explicit = true
		} else {
			path = defaultConfigPath(getenv)
		}
	}
	fc, err := loadConfigFile(path, explicit)
	if err != nil {
		return credentials{}, err
	}
	pick := func(flag, env, file string) string {
		if flag != "" {
			return flag
		}
		if v := getenv(env); v != "" {
			return v
		}
		return file
	}
	c := credentials{
		URL:          pick(g.url, EnvURL, fc.URL),
		OrgID:        pick(g.orgID, EnvOrgID, fc.OrgID),
		APIKey:       pick(g.apiKey, EnvAPIKey, fc.APIKey),
		Token:        pick(g.token, EnvToken, fc.Token),
		ClientID:     pick("", EnvOAuthID, fc.ClientID),
		ClientSecret: pick("", EnvOAuthSecret, fc.ClientSecret),
	}
	if c.URL == "" {
		c.URL = DefaultURL
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		return credentials{}, fmt.Errorf("API URL %q must start with http:// or https://", c.URL)
	}
	if c.APIKey != "" && c.OrgID == "" {
		return credentials{}, fmt.Errorf("an API key needs its org id: set --org-id, %s or \"org_id\" in the config file", EnvOrgID)
	}
	if (c.ClientID == "") != (c.ClientSecret == "") {
		return credentials{}, errors.New("an OAuth2 client needs both its id and its secret")
	}
	return c, nil
}
