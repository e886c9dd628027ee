from django.core.management.base import BaseCommand, CommandError

from usage import services


class Command(BaseCommand):
    help = (
        "Load model prices from a catalogue file (default: the catalogue shipped in usage/data/prices.json). Adds "
        "every price whose model and start date have no row yet; rows that exist are kept as they are (so "
        "prices edited in the admin win) unless --update. A bad file changes nothing and names the entry."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", default=str(services.CATALOGUE), help="a prices JSON file")
        parser.add_argument("--update", action="store_true", help="overwrite existing rows with the file's rates")

    def handle(self, *args, file, update, **options):
        try:
            entries = services.prices_read(file)
        except services.CatalogueError as e:
            raise CommandError(str(e)) from None
        counts = services.prices_load(entries, update=update)
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Prices from {file}: {counts['created']} added, {counts['updated']} updated, {counts['kept']} kept."
            )
