package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/agentkeys/harness/protocol/cap"
	"github.com/agentkeys/harness/protocol/wire"
)

// editCap changes a cap's payload and keeps its signature, as a holder of the cap could.
func editCap(token []byte, edit func(*cap.Payload)) ([]byte, error) {
	t, err := cap.Decode(token)
	if err != nil {
		return nil, err
	}
	edit(&t.Payload)
	return json.Marshal(t)
}

// editJWT changes a JWT's claims and keeps its header and signature. A JWT that does not
// parse is returned changed in its last character, which is tampering all the same.
func editJWT(jwt string, edit func(map[string]any)) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return jwt + "x"
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	claims := map[string]any{}
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		return jwt + "x"
	}
	edit(claims)
	out, err := json.Marshal(claims)
	if err != nil {
		return jwt + "x"
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(out)
	return strings.Join(parts, ".")
}

// setActorTag points the token's actor tag (and its plain claim) at omni.
func setActorTag(claims map[string]any, omni string) {
	claims[wire.TagActorOmni] = omni
	tags, _ := claims[wire.TagsClaim].(map[string]any)
	if tags == nil {
		return
	}
	principal, _ := tags["principal_tags"].(map[string]any)
	if principal == nil {
		return
	}
	principal[wire.TagActorOmni] = []string{omni}
}
