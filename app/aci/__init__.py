"""The ACI face of Hashlens: Media Server-style requests in, <autnresponse> XML out."""
