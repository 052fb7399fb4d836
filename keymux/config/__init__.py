from keymux.config.schema import Config, DeploymentConfig, Limits, RouterSettings

__all__ = ["Config", "DeploymentConfig", "Limits", "RouterSettings"]
