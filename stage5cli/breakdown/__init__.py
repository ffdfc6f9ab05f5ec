"""Breakdown for scheduling: industry categories, page eighths, scene breakdown sheets and a
tagged Final Draft export.

    categories   the one category table (with its Final Draft tag categories), the rules that
                 give every extracted asset a category, and the assets an FDX's own tags make
    pages        lines, pages and eighths of a page (the printed-page rule)
    sheet        the scene breakdown (`stage5 breakdown`) and its CSV and HTML renderings
    fdx_export   `export --format fdx`: the script as FDX with TagData
    edit         `edit --category` (one transaction, one history entry)
"""
