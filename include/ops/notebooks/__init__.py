"""SageMaker notebook instances: the idle-stop decisions and the heartbeat lifecycle configuration."""
