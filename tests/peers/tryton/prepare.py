"""Gives the Tryton test peer's `admin` user the groups the connector tests need.

Run by scripts/lib/peers.sh with the peer's own Python, once, when it builds the template
database: `python prepare.py CONFIG DATABASE`. A new Tryton database's `admin` may administer
users and modules but may not read or create products or bills of materials until it is a
member of the product and production groups.
"""

import sys

from trytond import config

GROUPS = (
    'product.group_product_admin',
    'production.group_production',
    'production.group_production_admin',
)


def main(conf, database):
    config.update_etc(conf)
    # Imported after the configuration is read: the pool reads it on import.
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    pool = Pool(database)
    pool.init()
    with Transaction().start(database, 0) as transaction:
        ModelData = pool.get('ir.model.data')
        User = pool.get('res.user')
        admin, = User.search([('login', '=', 'admin')])
        group_ids = [ModelData.get_id(name) for name in GROUPS]
        User.write([admin], {'groups': [('add', group_ids)]})
        transaction.commit()


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: prepare.py CONFIG DATABASE')
    main(sys.argv[1], sys.argv[2])
