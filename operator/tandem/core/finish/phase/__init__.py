"""The phase road: finishing a pod by writing its terminal phase. Imports nothing from the exec
road."""
