"""Reading waybill codes from images: warehouse camera photos (JPEG, PNG) and X-ray machines' DICOM/DICOS.

load.load_image turns bytes into a grey image (refusing what is not one), reader.read_codes finds and decodes the
codes in it, synth makes realistic photos with their ground truth for the tests and the benchmark.
"""
