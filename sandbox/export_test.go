package sandbox

// AvailableErr lets the tests say why they skip.
var AvailableErr = availableErr

// DockerClient lets the tests inspect what the harness made.
var DockerClient = dockerClient

// ImageTag is the tag BuildImage would give spec, worked out without the daemon.
func ImageTag(spec ImageSpec) (string, error) {
	tag, _, _, err := spec.plan()
	return tag, err
}
