"""The alert channels' settings: off by default, read from the environment, and refused
with the variable named when they cannot work."""

import pytest

from config.settings import AlertSettings, Settings, SettingsError


def test_no_alert_channel_is_configured_by_default():
    alerts = Settings.from_env({}).alerts
    assert alerts == AlertSettings()
    assert (alerts.webhook_url, alerts.smtp_host, alerts.email_to) == (None, None, ())


def test_alert_settings_are_read_from_the_environment():
    alerts = Settings.from_env(
        {
            "ALERT_WEBHOOK_URL": "https://hooks.example.com/stratlens",
            "ALERT_WEBHOOK_SECRET": "k",
            "SMTP_HOST": "mail.example.com",
            "SMTP_PORT": "587",
            "SMTP_FROM": "bot@example.com",
            "ALERT_EMAIL_TO": "desk@example.com, risk@example.com",
            "SMTP_USER": "bot",
            "SMTP_PASSWORD": "pw",
            "SMTP_STARTTLS": "true",
        }
    ).alerts
    assert alerts.webhook_url == "https://hooks.example.com/stratlens"
    assert alerts.webhook_secret == "k"
    assert (alerts.smtp_host, alerts.smtp_port, alerts.smtp_from) == (
        "mail.example.com", 587, "bot@example.com"
    )  # fmt: skip
    assert alerts.email_to == ("desk@example.com", "risk@example.com")
    assert (alerts.smtp_user, alerts.smtp_password, alerts.smtp_starttls) == ("bot", "pw", True)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ALERT_WEBHOOK_URL": "ftp://x/y", "ALERT_WEBHOOK_SECRET": "k"}, "ALERT_WEBHOOK_URL"),
        ({"ALERT_WEBHOOK_URL": "http://x/y"}, "ALERT_WEBHOOK_SECRET"),
        ({"SMTP_HOST": "mail"}, "ALERT_EMAIL_TO"),
        ({"SMTP_HOST": "mail", "ALERT_EMAIL_TO": "not-an-address"}, "ALERT_EMAIL_TO"),
        ({"SMTP_PORT": "0"}, "SMTP_PORT"),
        ({"SMTP_FROM": "me"}, "SMTP_FROM"),
        ({"SMTP_USER": "bot"}, "SMTP_PASSWORD"),
        ({"SMTP_PASSWORD": "pw"}, "SMTP_USER"),
        ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS"),
    ],
)
def test_an_unusable_alert_setting_names_its_variable(env, variable):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert "pw" not in str(caught.value)  # a password is never echoed
