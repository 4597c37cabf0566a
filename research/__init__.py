from research import quiet

quiet.install()
