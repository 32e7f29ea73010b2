package sts

import (
	"encoding/xml"
	"net/http"
	"time"
)

const xmlns = "https://sts.amazonaws.com/doc/2011-06-15/"

// AWS error codes the stub answers with.
const (
	CodeInvalidIdentityToken = "InvalidIdentityToken"
	CodeExpiredToken         = "ExpiredTokenException"
	CodeAccessDenied         = "AccessDenied"
	CodeValidation           = "ValidationError"
	CodeMissingParameter     = "MissingParameter"
	CodeInvalidAction        = "InvalidAction"
	// CodeIDPCommunication reports that the broker's JWKS could not be fetched or used,
	// so the token could not be checked at all; AWS answers it with HTTP 400.
	CodeIDPCommunication = "IDPCommunicationError"
	// CodeUpstream reports that MinIO's AssumeRole failed, which is the harness's fault
	// rather than the caller's.
	CodeUpstream = "ServiceUnavailable"
)

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUserXML struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type resultXML struct {
	SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
	Audience                    string             `xml:"Audience"`
	AssumedRoleUser             assumedRoleUserXML `xml:"AssumedRoleUser"`
	Credentials                 credentialsXML     `xml:"Credentials"`
	Provider                    string             `xml:"Provider"`
}

type responseXML struct {
	XMLName  xml.Name  `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns    string    `xml:"xmlns,attr"`
	Result   resultXML `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata struct {
		RequestID string `xml:"RequestId"`
	} `xml:"ResponseMetadata"`
}

type errorXML struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func writeXML(w http.ResponseWriter, status int, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

func writeError(w http.ResponseWriter, status int, code, message, requestID string) {
	var e errorXML
	e.Xmlns = xmlns
	e.Error.Type = "Sender"
	if status >= 500 {
		e.Error.Type = "Receiver"
	}
	e.Error.Code = code
	e.Error.Message = message
	e.RequestID = requestID
	writeXML(w, status, e)
}

func formatExpiration(t time.Time) string { return t.UTC().Format(time.RFC3339) }
