# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""anthem songs configuring a database for the cloud platform (anthem 0.15)::

    anthem odoo.addons.cloud_platform.songs::install_exoscale -- -d DB   # S3
    anthem odoo.addons.cloud_platform.songs::install_ovh -- -d DB        # Swift
    anthem odoo.addons.cloud_platform.songs::install -- -d DB            # the kind of
        # ODOO_CLOUD_PLATFORM_KIND, else server_environment's [cloud_platform] kind,
        # else the platform already recorded in the database

Each records the platform, sets ``ir_attachment.location`` for the running environment,
runs the startup checks (the song fails naming every problem) and moves the existing
attachments. Singing one twice changes nothing the second time.
"""

import anthem


@anthem.log
def install_exoscale(ctx):
    """Configure the database for Exoscale (attachments in S3)"""
    ctx.env["cloud.platform"].install_exoscale()


@anthem.log
def install_ovh(ctx):
    """Configure the database for OVH (attachments in Swift)"""
    ctx.env["cloud.platform"].install_ovh()


@anthem.log
def install(ctx):
    """Configure the database for the platform of this environment"""
    platform = ctx.env["cloud.platform"]._platform_kind()
    ctx.log_line(f"platform: {platform}")
    ctx.env["cloud.platform"].install(platform)
